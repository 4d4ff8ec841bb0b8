"""The admin's mapping preview: the requests deliver() would make, nothing sent.

It uses the stored links only (no HTTP at all): a contact without a link is shown as
searched and then created; ids HubSpot has not assigned yet appear as placeholders.
"""
from __future__ import annotations

from typing import Any

from connectors.base import HubEvent, LinkStore
from connectors.hubspot import mapping
from connectors.hubspot.sync import HANDLED, MESSAGE_EVENTS
from connectors.hubspot.tasks import SLA_EVENT, TASK_LINK


def _owner(settings: dict[str, Any], user: dict[str, Any] | None) -> str | None:
    if not user:
        return settings.get("default_owner_id") or None
    email = str(user.get("email") or "").lower()
    for key, value in (settings.get("owner_map") or {}).items():
        if key.lower() == email:
            return str(value)
    if settings.get("match_owners_by_email", True) and email:
        return f"<owner with e-mail {email}>"
    return settings.get("default_owner_id") or None


def plan(batch: list[HubEvent], links: LinkStore, settings: dict[str, Any], _owners: Any = None) -> list[dict[str, Any]]:
    events = [e for e in batch if e.type in HANDLED and (e.data.get("contact") or {}).get("id")
              and (e.data.get("conversation") or {}).get("id")]
    contacts = {str(e.data["contact"]["id"]): e.data["contact"] for e in events}
    contact_links = links.get_many("contact", list(contacts))
    deal_links = links.get_many("conversation", [str(e.data["conversation"]["id"]) for e in events])
    contact_id = {cid: contact_links.get(cid, f"<new contact for hub contact {cid}>") for cid in contacts}
    id_property = settings["contact_id_property"]
    requests: list[dict[str, Any]] = []
    new_contacts = [c for cid, c in contacts.items() if cid not in contact_links]
    for chunk in mapping.chunks(new_contacts, mapping.SEARCH_VALUES_LIMIT):
        requests.append({"method": "POST", "path": "/crm/v3/objects/contacts/search",
                         "body": mapping.contact_search_body(chunk, id_property)})
        requests.append({"method": "POST", "path": "/crm/v3/objects/contacts/batch/create",
                         "body": {"inputs": [mapping.contact_create_input(c, id_property) for c in chunk]}})
    deal_inputs = []
    deal_id: dict[str, str] = {}
    for e in events:
        conv = e.data["conversation"]
        cid = str(conv["id"])
        if cid in deal_links:
            deal_id[cid] = deal_links[cid]
        elif cid not in deal_id:
            deal_id[cid] = f"<new deal for conversation {cid}>"
            deal_inputs.append(mapping.deal_create_input(conv, e.data["contact"], contact_id[str(e.data["contact"]["id"])],
                                                         settings, _owner(settings, conv.get("assignee"))))
    for chunk in mapping.chunks(deal_inputs):
        requests.append({"method": "POST", "path": "/crm/v3/objects/deals/batch/create", "body": {"inputs": chunk}})
    updates: dict[str, dict[str, str]] = {}
    for e in events:
        deal = deal_id[str(e.data["conversation"]["id"])]
        if e.type == "conversation.assigned":
            owner = _owner(settings, e.data.get("assignee"))
            if owner or e.data.get("assignee") is None:
                updates.setdefault(deal, {})["hubspot_owner_id"] = owner or ""
        elif e.type == "conversation.closed" and settings.get("closed_stage_id"):
            updates.setdefault(deal, {})["dealstage"] = settings["closed_stage_id"]
        elif e.type == "lead.attributed":
            props = mapping.source_properties(e.data.get("lead_source"), settings["source_properties"])
            if props:
                updates.setdefault(deal, {}).update(props)
    for chunk in mapping.chunks([{"id": d, "properties": p} for d, p in updates.items()]):
        requests.append({"method": "POST", "path": "/crm/v3/objects/deals/batch/update", "body": {"inputs": chunk}})
    messages = [e for e in events if e.type in MESSAGE_EVENTS and (e.data.get("message") or {}).get("id")
                and mapping.should_log(e.data["message"], settings.get("log_messages", "all"))]
    message_links = links.get_many("message", [str(e.data["message"]["id"]) for e in messages])
    comm_inputs = []
    for e in messages:
        if str(e.data["message"]["id"]) in message_links:
            continue
        conv = e.data["conversation"]
        comm_inputs.append(mapping.communication_create_input(
            e.data["message"], e.data["contact"], contact_id[str(e.data["contact"]["id"])],
            deal_id[str(conv["id"])], _owner(settings, conv.get("assignee"))))
    for chunk in mapping.chunks(comm_inputs):
        requests.append({"method": "POST", "path": "/crm/v3/objects/communications/batch/create",
                         "body": {"inputs": chunk}})
    breaches = [e for e in events if e.type == SLA_EVENT]
    task_links = links.get_many(TASK_LINK, [str(e.id) for e in breaches]) if breaches else {}
    task_inputs = [mapping.task_create_input(e.data, str(e.id), e.occurred_at, deal_id[str(e.data["conversation"]["id"])],
                                             contact_id[str(e.data["contact"]["id"])],
                                             _owner(settings, mapping.task_holder(e.data)))
                   for e in breaches if str(e.id) not in task_links]
    for chunk in mapping.chunks(task_inputs):
        requests.append({"method": "POST", "path": "/crm/v3/objects/tasks/batch/create", "body": {"inputs": chunk}})
    return requests
