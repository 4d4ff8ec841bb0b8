"""The requests deliver() would make for a batch, without sending anything.

Reads the hub's links (local) but never amoCRM, so lookups whose answers decide the
rest (search by phone, the customer's open deals, recovery after an interruption) are
shown as the GETs they would be, and ids not known yet as placeholders.
"""
from __future__ import annotations

from typing import Any, Mapping

from connectors.amocrm import leads as leads_mod
from connectors.amocrm import mapping
from connectors.amocrm.sync import CONVERSATION_TYPES, NOTES_BATCH, PATCH_BATCH
from connectors.base import HubEvent, LinkStore


def _placeholder(conv_id: str) -> str:
    return f"<deal of conversation {conv_id}>"


def plan(batch: list[HubEvent], links: LinkStore, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = []
    complex_bodies: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    patches: dict[str, dict[str, Any]] = {}
    contact_notes: list[dict[str, Any]] = []
    seen: set[str] = set()
    searched: set[str] = set()
    for event in batch:
        data = event.data
        if event.type == "contact.opted_out":
            contact = data.get("contact") or {}
            try:
                key = mapping.contact_key(contact)
            except mapping.PayloadError:
                continue
            contact_id = links.get(*key)
            if contact_id:
                contact_notes.append(mapping.contact_note_body(
                    int(contact_id), f"Opted out of WhatsApp messages ({data.get('reason') or 'no reason given'})"))
            continue
        if event.type not in CONVERSATION_TYPES:
            continue
        try:
            conv = mapping.require(data, "conversation")
            contact = mapping.require(data, "contact")
            conv_id = str(mapping.require(conv, "id"))
            key = mapping.contact_key(contact)
        except mapping.PayloadError:
            continue
        lead_id: Any = links.get(leads_mod.CONVERSATION, conv_id)
        if lead_id is None and conv_id not in seen:
            seen.add(conv_id)
            contact_id = links.get(*key)
            if contact_id is None and key[0] == "phone" and settings.get("existing_contacts") == "search" \
                    and key[1] not in searched:
                searched.add(key[1])
                requests.append({"method": "GET", "path": "/api/v4/contacts",
                                 "params": {"query": mapping.national_digits(key[1]), "with": "leads"}, "body": None})
            elif contact_id is not None and settings.get("deal_mode", "reuse_open") == "reuse_open":
                # The customer's open deal would be reused instead of the complex below.
                requests.append({"method": "GET", "path": "/api/v4/contacts",
                                 "params": {"filter[id][]": [int(contact_id)], "with": "leads"}, "body": None})
            complex_bodies.append(mapping.lead_body(conv, contact, settings,
                                                    contact_id=int(contact_id) if contact_id else None))
        lead_ref: Any = int(lead_id) if lead_id else _placeholder(conv_id)
        if event.type in ("message.received", "message.sent"):
            message = data.get("message") or {}
            if message.get("id") is not None and mapping.wants_note(message, settings.get("timeline_messages", "all")):
                body = mapping.note_body(0, message, contact, settings.get("note_type") or "common")
                body["entity_id"] = lead_ref
                notes.append(body)
        elif event.type == "conversation.assigned":
            user = mapping.responsible_user({"assignee": data.get("assignee")},
                                            {**settings, "responsible_user_id": None})
            if user:
                patches.setdefault(str(lead_ref), {"id": lead_ref})["responsible_user_id"] = user
        elif event.type == "conversation.closed" and settings.get("close_status_id"):
            body = mapping.close_patch(0, settings["close_status_id"], settings.get("pipeline_id"))
            body["id"] = lead_ref
            patches.setdefault(str(lead_ref), {"id": lead_ref}).update(body)
        elif event.type == "lead.attributed":
            body = mapping.attribution_patch(0, data.get("lead_source"), settings.get("source_fields") or {})
            if body:
                body["id"] = lead_ref
                patches.setdefault(str(lead_ref), {"id": lead_ref}).update(body)
    for i in range(0, len(complex_bodies), leads_mod.COMPLEX_BATCH):
        requests.append({"method": "POST", "path": "/api/v4/leads/complex",
                         "body": complex_bodies[i:i + leads_mod.COMPLEX_BATCH]})
    for i in range(0, len(notes), NOTES_BATCH):
        requests.append({"method": "POST", "path": "/api/v4/leads/notes", "body": notes[i:i + NOTES_BATCH]})
    items = list(patches.values())
    for i in range(0, len(items), PATCH_BATCH):
        requests.append({"method": "PATCH", "path": "/api/v4/leads", "body": items[i:i + PATCH_BATCH]})
    for i in range(0, len(contact_notes), NOTES_BATCH):
        requests.append({"method": "POST", "path": "/api/v4/contacts/notes",
                         "body": contact_notes[i:i + NOTES_BATCH]})
    return requests
