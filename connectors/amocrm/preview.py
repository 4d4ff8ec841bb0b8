"""The requests deliver() would make for a batch, without sending anything.

Reads the hub's links (local) but never amoCRM, so lookups whose answers decide the
rest (search by phone, the customer's open deals, recovery after an interruption) are
shown as the GETs they would be, and ids not known yet as placeholders.

Each event type's part is one small function in a table (CONTACT_STEPS for events about
a contact, LEAD_STEPS for the conversation events that write on the deal); a
conversation event first ensures its deal, whatever its type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from connectors.amocrm import leads as leads_mod
from connectors.amocrm import mapping
from connectors.amocrm.sync import CONVERSATION_TYPES, NOTES_BATCH, PATCH_BATCH
from connectors.base import HubEvent, LinkStore


def _placeholder(conv_id: str) -> str:
    return f"<deal of conversation {conv_id}>"


@dataclass
class Draft:
    """The requests a batch would make, gathered by kind: lookups in the order they come,
    bodies to be sent in batches at the end."""

    links: LinkStore
    settings: Mapping[str, Any]
    lookups: list[dict[str, Any]] = field(default_factory=list)
    complex_bodies: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    patches: dict[str, dict[str, Any]] = field(default_factory=dict)  # lead ref -> PATCH body
    contact_notes: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)      # conversations whose deal is already drafted
    searched: set[str] = field(default_factory=set)  # phones already searched

    def patch(self, lead_ref: Any) -> dict[str, Any]:
        return self.patches.setdefault(str(lead_ref), {"id": lead_ref})

    def requests(self) -> list[dict[str, Any]]:
        requests = list(self.lookups)
        for i in range(0, len(self.complex_bodies), leads_mod.COMPLEX_BATCH):
            requests.append({"method": "POST", "path": "/api/v4/leads/complex",
                             "body": self.complex_bodies[i:i + leads_mod.COMPLEX_BATCH]})
        for i in range(0, len(self.notes), NOTES_BATCH):
            requests.append({"method": "POST", "path": "/api/v4/leads/notes", "body": self.notes[i:i + NOTES_BATCH]})
        items = list(self.patches.values())
        for i in range(0, len(items), PATCH_BATCH):
            requests.append({"method": "PATCH", "path": "/api/v4/leads", "body": items[i:i + PATCH_BATCH]})
        for i in range(0, len(self.contact_notes), NOTES_BATCH):
            requests.append({"method": "POST", "path": "/api/v4/contacts/notes",
                             "body": self.contact_notes[i:i + NOTES_BATCH]})
        return requests


def _opted_out(draft: Draft, data: dict[str, Any]) -> None:
    contact = data.get("contact") or {}
    try:
        key = mapping.contact_key(contact)
    except mapping.PayloadError:
        return
    contact_id = draft.links.get(*key)
    if contact_id:
        draft.contact_notes.append(mapping.contact_note_body(
            int(contact_id), f"Opted out of WhatsApp messages ({data.get('reason') or 'no reason given'})"))


def _ensure_lead(draft: Draft, conv: dict[str, Any], contact: dict[str, Any], conv_id: str,
                 key: tuple[str, str]) -> Any:
    """The deal's id, or a placeholder for the deal the batch would create (once per
    conversation, after the lookups that could find one to reuse)."""
    settings = draft.settings
    lead_id: Any = draft.links.get(leads_mod.CONVERSATION, conv_id)
    if lead_id is None and conv_id not in draft.seen:
        draft.seen.add(conv_id)
        contact_id = draft.links.get(*key)
        if contact_id is None and key[0] == "phone" and settings.get("existing_contacts") == "search" \
                and key[1] not in draft.searched:
            draft.searched.add(key[1])
            draft.lookups.append({"method": "GET", "path": "/api/v4/contacts",
                                  "params": {"query": mapping.national_digits(key[1]), "with": "leads"}, "body": None})
        elif contact_id is not None and settings.get("deal_mode", "reuse_open") == "reuse_open":
            # The customer's open deal would be reused instead of the complex below.
            draft.lookups.append({"method": "GET", "path": "/api/v4/contacts",
                                  "params": {"filter[id][]": [int(contact_id)], "with": "leads"}, "body": None})
        draft.complex_bodies.append(mapping.lead_body(conv, contact, settings,
                                                      contact_id=int(contact_id) if contact_id else None))
    return int(lead_id) if lead_id else _placeholder(conv_id)


def _message(draft: Draft, data: dict[str, Any], contact: dict[str, Any], lead_ref: Any) -> None:
    settings = draft.settings
    message = data.get("message") or {}
    if message.get("id") is not None and mapping.wants_note(message, settings.get("timeline_messages", "all")):
        body = mapping.note_body(0, message, contact, settings.get("note_type") or "common",
                                 mapping.channel_label(data.get("conversation")))
        body["entity_id"] = lead_ref
        draft.notes.append(body)


def _assigned(draft: Draft, data: dict[str, Any], contact: dict[str, Any], lead_ref: Any) -> None:
    user = mapping.responsible_user({"assignee": data.get("assignee")},
                                    {**draft.settings, "responsible_user_id": None})
    if user:
        draft.patch(lead_ref)["responsible_user_id"] = user


def _closed(draft: Draft, data: dict[str, Any], contact: dict[str, Any], lead_ref: Any) -> None:
    settings = draft.settings
    if settings.get("close_status_id"):
        body = mapping.close_patch(0, settings["close_status_id"], settings.get("pipeline_id"))
        body["id"] = lead_ref
        draft.patch(lead_ref).update(body)


def _attributed(draft: Draft, data: dict[str, Any], contact: dict[str, Any], lead_ref: Any) -> None:
    body = mapping.attribution_patch(0, data.get("lead_source"), draft.settings.get("source_fields") or {})
    if body:
        body["id"] = lead_ref
        draft.patch(lead_ref).update(body)


# Events about a contact, with no deal to ensure.
CONTACT_STEPS: dict[str, Callable[[Draft, dict[str, Any]], None]] = {
    "contact.opted_out": _opted_out,
}
# What a conversation event writes on its deal, once the deal is ensured; a type not
# here (conversation.started, sla.breached, automation.step) only ensures the deal.
LEAD_STEPS: dict[str, Callable[[Draft, dict[str, Any], dict[str, Any], Any], None]] = {
    "message.received": _message,
    "message.sent": _message,
    "conversation.assigned": _assigned,
    "conversation.closed": _closed,
    "lead.attributed": _attributed,
}


def _conversation_event(draft: Draft, event: HubEvent) -> None:
    data = event.data
    try:
        conv = mapping.require(data, "conversation")
        contact = mapping.require(data, "contact")
        conv_id = str(mapping.require(conv, "id"))
        key = mapping.contact_key(contact)
    except mapping.PayloadError:
        return
    lead_ref = _ensure_lead(draft, conv, contact, conv_id, key)
    step = LEAD_STEPS.get(event.type)
    if step is not None:
        step(draft, data, contact, lead_ref)


def plan(batch: list[HubEvent], links: LinkStore, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    draft = Draft(links, settings)
    for event in batch:
        if event.type in CONTACT_STEPS:
            CONTACT_STEPS[event.type](draft, event.data)
        elif event.type in CONVERSATION_TYPES:
            _conversation_event(draft, event)
    return draft.requests()
