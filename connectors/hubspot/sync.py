"""One wave of hub events -> HubSpot, with as few requests as the batch APIs allow.

A wave never holds two events of one conversation, so the steps can batch across
conversations: contacts (links, then one search per 100, then batch create), deals (links,
optional reuse of an open deal, batch create with the contact association), deal updates
(owner, stage, source), then communications (batch create with both associations), then
the tasks of SLA breaches (tasks.py: the same intent pattern as communications).

Duplicates are kept out whatever retries happen:
- contacts and deals carry a unique-value id property, so a create repeated after a lost
  answer gets 409 and resolves to the existing id (batch read by that property);
- communications have no unique property, so before creating them an "intent" link is
  stored per message; a message that has an intent but no link may already exist, and its
  deal's communications are read back and matched (timestamp + body) before creating.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from connectors.automation_notes import stage_move
from connectors.base import HubEvent, LinkStore, Outcome
from connectors.hubspot import mapping, tasks
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.wave import Entry, Item
from connectors.hubspot.errors import (
    AuthFailed, Conflict, HubSpotError, RateLimited, Unavailable, ValidationFailed,
)

log = logging.getLogger(__name__)

MESSAGE_EVENTS = frozenset({"message.received", "message.sent"})
HANDLED = frozenset({
    "conversation.started", "message.received", "message.sent", "conversation.assigned",
    "conversation.closed", "lead.attributed", "sla.breached", "automation.step",
})
INTENT = "hubspot_communication_intent"
OWNERS_TTL_SECONDS = 600.0


# link: HubSpot deal id -> the hubspot_owner_id the hub last wrote there (or last saw in a
# webhook); a deal.propertyChange showing another one is a hand-over made in HubSpot
OWNER_SEEN = "hubspot.owner"


class ConfigProblem(Exception):
    """Something only the admin can fix; deliveries wait."""


class OwnerDirectory:
    """Hub operators -> HubSpot owner ids: the explicit map, then the same e-mail."""

    def __init__(self, client: HubSpotClient, settings: dict[str, Any], monotonic: Callable[[], float] = time.monotonic):
        self.client = client
        self.settings = settings
        self.monotonic = monotonic
        self._by_email: dict[str, str] | None = None
        self._loaded_at = 0.0

    def load(self) -> dict[str, str]:
        if self._by_email is None or self.monotonic() - self._loaded_at > OWNERS_TTL_SECONDS:
            owners = self.client.owners()
            self._by_email = {str(o.get("email") or "").lower(): str(o["id"]) for o in owners if o.get("email")}
            self._loaded_at = self.monotonic()
        return self._by_email

    def needs_lookup(self, user: dict[str, Any] | None) -> bool:
        if not user or not self.settings.get("match_owners_by_email", True):
            return False
        email = str(user.get("email") or "").lower()
        mapped = {k.lower() for k in (self.settings.get("owner_map") or {})}
        return bool(email) and email not in mapped

    def owner_for(self, user: dict[str, Any] | None) -> str | None:
        default = self.settings.get("default_owner_id") or None
        if not user:
            return default
        email = str(user.get("email") or "").lower()
        for key, value in (self.settings.get("owner_map") or {}).items():
            if key.lower() == email:
                return str(value)
        if self.settings.get("match_owners_by_email", True) and email:
            found = self.load().get(email)
            if found:
                return found
        return default


    def email_for(self, owner_id: str) -> str | None:
        """The operator e-mail of a HubSpot owner: the map (when one operator maps to
        it), then the owner's own e-mail when matching by e-mail; None otherwise."""
        mapped = [k.lower() for k, v in (self.settings.get("owner_map") or {}).items() if str(v) == owner_id]
        if mapped:
            return mapped[0] if len(mapped) == 1 else None
        if not self.settings.get("match_owners_by_email", True):
            return None
        emails = [email for email, id_ in self.load().items() if id_ == owner_id]
        return emails[0] if len(emails) == 1 else None


class WaveSync:
    def __init__(self, client: HubSpotClient, links: LinkStore, settings: dict[str, Any],
                 owners: OwnerDirectory, closed_stages: Callable[[], set[str]],
                 pipelines: Callable[[], list[dict[str, Any]]] = list):
        self.client = client
        self.links = links
        self.settings = settings
        self.owners = owners
        self.closed_stages = closed_stages
        self.pipelines = pipelines
        self.config_problems: list[str] = []

    # -- entry point ------------------------------------------------------------------
    def run(self, events: list[HubEvent]) -> list[Outcome]:
        items = [Item(e) for e in events]
        for item in items:
            self._check_shape(item)
        try:
            live = self._active(items)
            self._prime_owners(live)
            self._contacts(self._active(items))
            self._deals(self._active(items))
            self._updates(self._active(items))
            self._communications(self._active(items))
            tasks.create_tasks(self, self._active(items))
        except RateLimited as exc:
            if not exc.daily:
                raise
            for item in items:
                item.decide(Outcome.wait(exc.message, retry_at=exc.retry_at))
        for item in items:
            item.decide(Outcome.done({"hubspot": {
                k: v for k, v in (("contact", item.contact_crm_id), ("deal", item.deal_crm_id)) if v
            } | item.response}))
        return [item.outcome for item in items]  # type: ignore[misc]

    @staticmethod
    def _active(items: list[Item]) -> list[Item]:
        return [i for i in items if i.outcome is None]

    def _check_shape(self, item: Item) -> None:
        if item.event.type not in HANDLED:
            item.decide(Outcome.done({"skipped": f"{item.event.type} is not synced to HubSpot"}))
            return
        conv, contact = item.conversation, item.contact
        if not conv.get("id") or not contact.get("id"):
            item.decide(Outcome.dead(f"{item.event.type} event lacks conversation or contact (docs/events.md)"))
            return
        if item.event.type in MESSAGE_EVENTS and not (item.data.get("message") or {}).get("id"):
            item.decide(Outcome.dead(f"{item.event.type} event lacks message.id"))
            return
        try:
            mapping.contact_key(contact)
            if item.event.type in MESSAGE_EVENTS:
                mapping.message_timestamp_ms(item.data["message"])
        except (mapping.MappingError, ValueError) as exc:
            item.decide(Outcome.dead(str(exc)))

    def _fail(self, items: list[Item], exc: Exception) -> None:
        outcome = self.outcome_for(exc)
        for item in items:
            item.decide(outcome)

    def outcome_for(self, exc: Exception) -> Outcome:
        if isinstance(exc, AuthFailed):
            raise exc
        if isinstance(exc, RateLimited) and exc.daily:
            raise exc
        if isinstance(exc, Unavailable):
            return Outcome.retry(exc.message, retry_at=exc.retry_at, response=exc.response)
        if isinstance(exc, ValidationFailed):
            for name, code, _ in exc.problems:
                if code == "PROPERTY_DOESNT_EXIST":
                    self.config_problems.append(
                        f"HubSpot has no property {name!r}: create it (Test connection with "
                        f"'Create missing properties') or change the mapping, then replay the dead letters")
            return Outcome.dead("HubSpot refused the data: " + mapping.describe_problems(exc.problems, exc.message),
                                response=exc.response)
        if isinstance(exc, HubSpotError):
            return Outcome.dead(exc.message, response=exc.response)
        raise exc

    def _prime_owners(self, items: list[Item]) -> None:
        users = ([i.conversation.get("assignee") for i in items] + [i.data.get("assignee") for i in items]
                 + [i.data.get("reassigned_to") for i in items])
        if any(self.owners.needs_lookup(u) for u in users if u):
            try:
                self.owners.load()
            except (Unavailable, HubSpotError) as exc:
                self._fail(items, exc)

    # -- batch create with conflict resolution and bisection ---------------------------
    def create(self, object_type: str, entries: list[Entry], id_property: str | None) -> None:
        for chunk in mapping.chunks(entries):
            self._create_chunk(object_type, chunk, id_property)

    def _create_chunk(self, object_type: str, entries: list[Entry], id_property: str | None) -> None:
        if not entries:
            return
        try:
            results = self.client.batch_create(object_type, [e.input for e in entries])
        except ValidationFailed as exc:
            if len(entries) == 1:
                entries[0].fail(self.outcome_for(exc))
            else:  # find the input HubSpot refuses; the others still go in
                half = len(entries) // 2
                self._create_chunk(object_type, entries[:half], id_property)
                self._create_chunk(object_type, entries[half:], id_property)
            return
        except Conflict as exc:
            self._resolve_conflict(object_type, entries, id_property, exc)
            return
        except (Unavailable, HubSpotError) as exc:
            outcome = self.outcome_for(exc)
            for e in entries:
                e.fail(outcome)
            return
        by_trace = mapping.results_by_trace(results)
        by_key = mapping.results_by_property(results, id_property) if id_property else {}
        created = []
        for e in entries:
            record = by_trace.get(e.trace) or (by_key.get(e.key) if e.key else None)
            if record is None:
                e.fail(Outcome.retry(f"HubSpot's answer to the batch create does not name {e.trace}"))
            else:
                created.append((e, str(record["id"])))
        self.settle(created)

    def settle(self, resolved: list[tuple[Entry, str]]) -> None:
        """Store the links of resolved entries, one transaction per entity type, then
        call each entry's `done` with the CRM id now linked (an existing link wins)."""
        by_type: dict[str, list[tuple[str, str, str]]] = {}
        for e, crm_id in resolved:
            if e.link:
                entity_type, hub_ids, crm_type = e.link
                by_type.setdefault(entity_type, []).extend((h, crm_type, crm_id) for h in hub_ids)
        stored = {t: self.links.put_many(t, rows) for t, rows in by_type.items()}
        for e, crm_id in resolved:
            e.created = crm_id
            if e.link:
                entity_type, hub_ids, _ = e.link
                e.linked = {str(h): stored[entity_type].get(str(h), crm_id) for h in hub_ids}
                crm_id = e.linked[str(hub_ids[0])]
            e.done(crm_id)

    def _resolve_conflict(self, object_type: str, entries: list[Entry], id_property: str | None, exc: Any) -> None:
        if len(entries) == 1 and exc.existing_id:
            self.settle([(entries[0], str(exc.existing_id))])
            return
        found: dict[str, dict[str, Any]] = {}
        if id_property:
            try:
                records = self.client.batch_read(object_type, [e.key for e in entries], [id_property],
                                                 id_property=id_property)
            except (Unavailable, HubSpotError) as read_exc:
                outcome = self.outcome_for(read_exc)
                for e in entries:
                    e.fail(outcome)
                return
            found = mapping.results_by_property(records, id_property)
        rest = [e for e in entries if e.key not in found]
        self.settle([(e, str(found[e.key]["id"])) for e in entries if e.key in found])
        if len(rest) < len(entries):
            self._create_chunk(object_type, rest, id_property)
        elif len(rest) == 1:
            rest[0].fail(Outcome.dead(f"HubSpot answered 409: {exc.message}", response=exc.response))
        else:
            half = len(rest) // 2
            self._create_chunk(object_type, rest[:half], id_property)
            self._create_chunk(object_type, rest[half:], id_property)

    # -- contacts ------------------------------------------------------------------------
    def _contacts(self, items: list[Item]) -> None:
        by_contact: dict[str, list[Item]] = {}
        for item in items:
            by_contact.setdefault(str(item.contact["id"]), []).append(item)
        linked = self.links.get_many("contact", list(by_contact))
        for cid, crm_id in linked.items():
            for item in by_contact[cid]:
                item.contact_crm_id = crm_id
        missing = [by_contact[cid][0].contact for cid in by_contact if cid not in linked]
        if not missing:
            return
        id_property = self.settings["contact_id_property"]

        def link(cid: str, crm_id: str) -> None:
            for item in by_contact[cid]:
                item.contact_crm_id = crm_id

        to_create = []
        for chunk in mapping.chunks(missing, mapping.SEARCH_VALUES_LIMIT):
            try:
                results = list(self.client.search("contacts", mapping.contact_search_body(chunk, id_property)))
            except (Unavailable, HubSpotError) as exc:
                self._fail([i for c in chunk for i in by_contact[str(c["id"])]], exc)
                continue
            found = mapping.match_contacts(results, chunk, id_property)
            stored = self.links.put_many("contact", [(cid, "contacts", crm_id) for cid, crm_id in found.items()])
            for cid, crm_id in stored.items():
                link(cid, crm_id)
            to_create.extend(c for c in chunk if str(c["id"]) not in found)

        def entry(contact: dict[str, Any]) -> Entry:
            cid = str(contact["id"])
            body = mapping.contact_create_input(contact, id_property)

            def fail(outcome: Outcome) -> None:
                for item in by_contact[cid]:
                    item.decide(outcome)
            return Entry(mapping.contact_key(contact), body["objectWriteTraceId"], body,
                         lambda crm_id: link(cid, crm_id), fail, link=("contact", [cid], "contacts"))

        self.create("contacts", [entry(c) for c in to_create], id_property)

    # -- deals ---------------------------------------------------------------------------
    def _deals(self, items: list[Item]) -> None:
        by_conv: dict[str, list[Item]] = {}
        for item in items:
            by_conv.setdefault(str(item.conversation["id"]), []).append(item)
        linked = self.links.get_many("conversation", list(by_conv))
        for conv_id, crm_id in linked.items():
            for item in by_conv[conv_id]:
                item.deal_crm_id = crm_id
        missing = [conv_id for conv_id in by_conv if conv_id not in linked]
        if not missing:
            return

        def link(conv_id: str, crm_id: str, new: bool) -> None:
            stored = self.links.put("conversation", conv_id, "deals", crm_id)
            for item in by_conv[conv_id]:
                item.deal_crm_id = stored
                item.deal_is_new = new and stored == crm_id

        def reuse(conv_id: str) -> bool:
            return by_conv[conv_id][0].reuses_open_deal(self.settings)

        reusing = [conv_id for conv_id in missing if reuse(conv_id)]
        if reusing:
            left = set(self._reuse_open_deals(reusing, by_conv, link))
            missing = [conv_id for conv_id in missing if conv_id in left or not reuse(conv_id)]
        # In reuse mode, conversations of one contact in this wave share one new deal.
        groups: dict[str, list[str]] = {}
        for conv_id in missing:
            item = by_conv[conv_id][0]
            group = f"contact:{item.contact_crm_id}" if reuse(conv_id) else conv_id
            groups.setdefault(str(group), []).append(conv_id)
        id_property = self.settings["deal_id_property"]
        entries: list[Entry] = []
        for conv_ids in groups.values():
            first = by_conv[conv_ids[0]][0]
            owner = self.owners.owner_for(first.conversation.get("assignee"))
            body = mapping.deal_create_input(first.conversation, first.contact, first.contact_crm_id,
                                             self.settings, owner)

            def done(_crm_id: str, conv_ids: list[str] = conv_ids, index: int = len(entries)) -> None:
                e = entries[index]
                for conv_id in conv_ids:
                    stored = e.linked.get(conv_id, e.created)
                    for item in by_conv[conv_id]:
                        item.deal_crm_id = stored
                        item.deal_is_new = stored == e.created

            def fail(outcome: Outcome, conv_ids: list[str] = conv_ids) -> None:
                for conv_id in conv_ids:
                    for item in by_conv[conv_id]:
                        item.decide(outcome)

            entries.append(Entry(str(first.conversation["id"]), body["objectWriteTraceId"], body, done, fail,
                                 link=("conversation", list(conv_ids), "deals")))
        self.create("deals", entries, id_property)
        # The owner each new deal got, remembered so HubSpot's webhook for it (and its
        # retries) is not taken for a manager's hand-over (webhooks.owner_commands).
        self.links.set_many(OWNER_SEEN, [(e.created, "owner", str(e.input["properties"]["hubspot_owner_id"]))
                                         for e in entries if e.created
                                         and (e.input.get("properties") or {}).get("hubspot_owner_id")])

    def _reuse_open_deals(self, missing: list[str], by_conv: dict[str, list[Item]],
                          link: Callable[[str, str, bool], None]) -> list[str]:
        contact_ids = sorted({by_conv[c][0].contact_crm_id for c in missing if by_conv[c][0].contact_crm_id})
        open_by_contact: dict[str, str] = {}
        try:
            closed = self.closed_stages()
            for chunk in mapping.chunks(contact_ids):
                deal_ids = self.client.associated_ids("contacts", "deals", chunk)
                all_ids = sorted({d for ids in deal_ids.values() for d in ids})
                records: dict[str, dict[str, Any]] = {}
                for ids in mapping.chunks(all_ids):
                    for r in self.client.batch_read("deals", ids, ["pipeline", "dealstage", "createdate"]):
                        records[str(r["id"])] = r
                for contact_id, ids in deal_ids.items():
                    candidates = [records[d] for d in ids if d in records and
                                  mapping.is_open_deal(records[d], self.settings["pipeline_id"], closed)]
                    best = mapping.newest(candidates)
                    if best:
                        open_by_contact[contact_id] = str(best["id"])
        except (Unavailable, HubSpotError) as exc:
            self._fail([i for c in missing for i in by_conv[c]], exc)
            return []
        rest = []
        for conv_id in missing:
            deal = open_by_contact.get(str(by_conv[conv_id][0].contact_crm_id))
            if deal:
                link(conv_id, deal, False)
            else:
                rest.append(conv_id)
        return rest

    # -- deal updates ----------------------------------------------------------------------
    def deal_update(self, item: Item) -> dict[str, str]:
        kind = item.event.type
        if kind == "conversation.assigned" and not item.deal_is_new:
            assignee = item.data.get("assignee")
            owner = self.owners.owner_for(assignee)
            if owner:
                return {"hubspot_owner_id": owner}
            if assignee is None:
                return {"hubspot_owner_id": ""}
            item.response["owner"] = f"no HubSpot owner for {assignee.get('email')}; owner left unchanged"
        if kind == "conversation.closed" and self.settings.get("closed_stage_id"):
            return {"dealstage": self.settings["closed_stage_id"]}
        if kind == "lead.attributed" and not item.deal_is_new:
            return mapping.source_properties(item.data.get("lead_source"), self.settings["source_properties"])
        move = stage_move(item.data) if kind == "automation.step" else None
        if move is not None:
            found = mapping.automation_stage_properties(*move, self.pipelines(),
                                                        str(self.settings.get("pipeline_id") or "default"))
            if isinstance(found, dict):
                return found
            item.response["skipped"] = found
        return {}

    def _updates(self, items: list[Item]) -> None:
        merged: dict[str, dict[str, str]] = {}
        owners_of: dict[str, list[Item]] = {}
        for item in items:
            try:
                props = self.deal_update(item)
            except (Unavailable, HubSpotError) as exc:  # reading the pipelines for a stage move
                self._fail([item], exc)
                continue
            if props and item.deal_crm_id:
                merged.setdefault(item.deal_crm_id, {}).update(props)
                owners_of.setdefault(item.deal_crm_id, []).append(item)
        inputs = [{"id": deal, "properties": props} for deal, props in merged.items()]
        # Remembered before the call: a webhook HubSpot sends for this write, even while
        # the answer is on its way, is not taken for a change made in HubSpot.
        self.links.set_many(OWNER_SEEN, [(deal, "owner", props["hubspot_owner_id"]) for deal, props in merged.items()
                                         if props.get("hubspot_owner_id")])
        for chunk in mapping.chunks(inputs):
            try:
                self.client.batch_update("deals", chunk)
            except ValidationFailed as exc:
                if len(chunk) > 1:  # isolate the refused deal
                    for one in chunk:
                        self._update_one(one, owners_of[one["id"]])
                else:
                    self._fail(owners_of[chunk[0]["id"]], exc)
            except (Unavailable, HubSpotError) as exc:
                self._fail([i for one in chunk for i in owners_of[one["id"]]], exc)
            else:
                for one in chunk:
                    for item in owners_of[one["id"]]:
                        item.response["updated"] = sorted(one["properties"])

    def _update_one(self, one: dict[str, Any], items: list[Item]) -> None:
        try:
            self.client.batch_update("deals", [one])
        except (Unavailable, HubSpotError) as exc:
            self._fail(items, exc)
        else:
            for item in items:
                item.response["updated"] = sorted(one["properties"])

    # -- communications ----------------------------------------------------------------------
    def _communications(self, items: list[Item]) -> None:
        mode = self.settings.get("log_messages", "all")
        wanted = []
        for item in items:
            if item.event.type not in MESSAGE_EVENTS:
                continue
            if mapping.should_log(item.data["message"], mode):
                wanted.append(item)
            else:
                item.response["communication"] = f"not logged (log_messages={mode})"
        if not wanted:
            return
        by_message = {str(i.data["message"]["id"]): i for i in wanted}
        linked = self.links.get_many("message", list(by_message))
        for mid, crm_id in linked.items():
            by_message[mid].response["communication"] = crm_id
        rest = [mid for mid in by_message if mid not in linked]
        intents = self.links.get_many(INTENT, rest) if rest else {}
        if intents:
            self._recover([by_message[m] for m in rest if m in intents])
            rest = [m for m in rest if by_message[m].response.get("communication") is None
                    and by_message[m].outcome is None]

        def entry(item: Item) -> Entry:
            message = item.data["message"]
            owner = self._message_owner(item)
            body = mapping.communication_create_input(message, item.contact, item.contact_crm_id,
                                                      item.deal_crm_id, owner)
            mid = str(message["id"])

            def done(crm_id: str) -> None:
                item.response["communication"] = crm_id
            return Entry("", body["objectWriteTraceId"], body, done, item.decide,
                         link=("message", [mid], "communications"))

        try:
            entries = [entry(by_message[m]) for m in rest]
        except (Unavailable, HubSpotError) as exc:
            self._fail([by_message[m] for m in rest], exc)
            return
        for chunk in mapping.chunks(entries):
            # Written before the request, so a lost answer leaves a trace to recover from.
            mids = [e.trace.removeprefix("message-") for e in chunk]
            self.links.put_many(INTENT, [(mid, "intent", str(by_message[mid].deal_crm_id)) for mid in mids])
            self._create_chunk("communications", chunk, None)

    def _message_owner(self, item: Item) -> str | None:
        message = item.data["message"]
        if message.get("direction") == "out" and message.get("author"):
            return self.owners.owner_for(message["author"])
        return self.owners.owner_for(item.conversation.get("assignee"))

    def _recover(self, items: list[Item]) -> None:
        """Messages that may have been created by an attempt whose answer was lost."""
        deals = sorted({str(i.deal_crm_id) for i in items})
        try:
            comm_ids: dict[str, list[str]] = {}
            for chunk in mapping.chunks(deals):
                comm_ids.update(self.client.associated_ids("deals", "communications", chunk))
            existing: dict[tuple[str, int | None, str], str] = {}
            all_ids = sorted({c for ids in comm_ids.values() for c in ids})
            owner_deal = {c: d for d, ids in comm_ids.items() for c in ids}
            for chunk in mapping.chunks(all_ids):
                for record in self.client.batch_read("communications", chunk,
                                                     ["hs_timestamp", "hs_communication_body"]):
                    key = mapping.communication_key(record.get("properties") or {})
                    existing[(owner_deal.get(str(record["id"]), ""), *key)] = str(record["id"])
        except (Unavailable, HubSpotError) as exc:
            self._fail(items, exc)
            return
        for item in items:
            props = mapping.communication_properties(item.data["message"], item.contact, None)
            key = (str(item.deal_crm_id), *mapping.communication_key(props))
            crm_id = existing.get(key)
            if crm_id:
                item.response["communication"] = self.links.put(
                    "message", str(item.data["message"]["id"]), "communications", crm_id)
                item.response["recovered"] = True

