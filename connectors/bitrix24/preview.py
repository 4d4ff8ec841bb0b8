"""The batch requests deliver() would send for some events, without sending anything.

Lookups are shown as they would go out; their answers are unknown, so the writes are
shown as for a phone Bitrix24 does not know yet, with "<ID from cN>" where a later batch
would carry an ID only the CRM can tell.
"""
from __future__ import annotations

from typing import Any

from connectors.base import HubEvent, LinkStore
from connectors.bitrix24 import mapping
from connectors.bitrix24.batching import Call, Ref, plan, substitute
from connectors.bitrix24.client import command_string
from connectors.bitrix24.mapping import ORIGINATOR, Options
from connectors.bitrix24.sync import HANDLED, PHONES_PER_LOOKUP, Item, parse, update_fields


def _render(batches: list[list[Call]], path: str = "/rest/batch.json") -> list[dict[str, Any]]:
    out = []
    seen: set[str] = set()
    for batch in batches:
        here = {c.key for c in batch}

        def placeholder(ref: Ref) -> str:
            if ref.key in here and ref.inline:
                return ref.macro()
            return f"<ID from {ref.key}>"

        cmd = {c.key: command_string(c.method, substitute(c.params, {}, placeholder)) for c in batch}
        out.append({"method": "POST", "path": path, "body": {"halt": 0, "cmd": cmd}})
        seen |= here
    return out


def requests_for(events: list[HubEvent], *, links: LinkStore, options: Options) -> list[dict[str, Any]]:
    items = [i for i in (parse(e) for e in events if e.type in HANDLED) if isinstance(i, Item)]
    contacts = links.get_many("contact", sorted({i.contact_id for i in items}))
    entities = links.get_many(options.conversation_link, sorted({i.conv_id for i in items}))
    messages = links.get_many("message", sorted({str(i.message["id"]) for i in items if i.message}))
    unknown: dict[str, Item] = {}
    for item in items:
        if item.contact_id not in contacts:
            unknown.setdefault(mapping.contact_key(item.contact), item)
    phones = sorted(k for k in unknown if not k.startswith("hub:"))
    lookups = [Call(f"p{n // PHONES_PER_LOOKUP}", "crm.duplicate.findbycomm",
                    {"entity_type": "CONTACT", "type": "PHONE", "values": phones[n:n + PHONES_PER_LOOKUP]})
               for n in range(0, len(phones), PHONES_PER_LOOKUP)]
    hub_only = sorted(k[4:] for k in unknown if k.startswith("hub:"))
    if hub_only:
        lookups.append(Call("origin", "crm.contact.list", {
            "filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": hub_only}, "select": ["ID", "ORIGIN_ID"]}))
    if options.reuse == "open":
        for cid in sorted({contacts[i.contact_id] for i in items
                           if i.contact_id in contacts and i.conv_id not in entities}):
            lookups.append(Call(f"open{cid}", f"crm.{options.target}.list",
                                {"filter": mapping.open_filter(int(cid), options), "select": ["ID"]}))
    writes: list[Call] = []
    contact_ref: dict[str, Any] = {}
    for key, item in unknown.items():
        writes.append(Call(f"c{item.contact_id}", "crm.contact.add",
                           {"fields": mapping.contact_fields(item.contact, options),
                            "params": {"REGISTER_SONET_EVENT": "N"}}))
        for other in items:
            if mapping.contact_key(other.contact) == key:
                contact_ref[other.contact_id] = Ref(f"c{item.contact_id}")
    entity_ref: dict[str, Any] = {}
    for item in items:
        if item.conv_id in entities or item.conv_id in entity_ref:
            continue
        cid = contacts.get(item.contact_id)
        writes.append(Call(f"d{item.conv_id}", f"crm.{options.target}.add", {
            "fields": mapping.entity_fields(item.conversation, item.contact,
                                            int(cid) if cid else contact_ref[item.contact_id], options),
            "params": {"REGISTER_SONET_EVENT": "N"}}))
        entity_ref[item.conv_id] = Ref(f"d{item.conv_id}", inline=True)
    for item in items:
        target: Any = int(entities[item.conv_id]) if item.conv_id in entities else entity_ref[item.conv_id]
        if mapping.wants_on_timeline(item.message, options) and str(item.message.get("id")) not in messages:
            writes.append(Call(f"m{item.message['id']}", "crm.timeline.comment.add", {"fields": {
                "ENTITY_ID": target, "ENTITY_TYPE": mapping.TIMELINE_ENTITY[options.target],
                "COMMENT": mapping.comment_text(item.message, item.contact)}}))
        update = update_fields(item, options) if item.conv_id in entities else {}
        if update:
            writes.append(Call(f"u{item.conv_id}", f"crm.{options.target}.update", {"id": target, "fields": update}))
    return _render(plan(lookups)) + _render(plan(writes))
