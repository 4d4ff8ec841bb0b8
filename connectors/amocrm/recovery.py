"""Finding what an interrupted attempt may already have created in amoCRM.

Used only when an intent (intents.py) shows an earlier attempt got as far as sending the
POST. Deals: amoCRM hands out ids in creation order, and our deals carry updated_at =
the time of the attempt, so the newest deals (order[id]=desc) are read back until they
are older than the first intent; a deal matches a conversation by pipeline, created_at
(the conversation's start) and its contact's phone. Notes: the notes changed around the intent's time
are read and matched by deal and exact text (the text names the hub message id).
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Protocol

from connectors.amocrm import mapping
from connectors.amocrm.client import AmoClient
from connectors.amocrm.intents import Intent

log = logging.getLogger(__name__)

CLOCK_SLACK = 300  # seconds between our clock and amoCRM's we tolerate
MAX_PAGES = 40  # 10,000 deals: far more than a few minutes of a real account


class _Wanted(Protocol):
    conversation: Mapping[str, Any]
    contact: Mapping[str, Any]

    @property
    def conv_id(self) -> str: ...


def _expected(w: _Wanted, settings: Mapping[str, Any]) -> dict[str, Any]:
    etype, eid = mapping.contact_key(w.contact)
    return {
        "name": mapping.deal_name(settings.get("deal_name_template") or "WhatsApp: {contact_name}",
                                  w.conversation, w.contact),
        "pipeline_id": settings.get("pipeline_id"),
        "created_at": mapping.unix(w.conversation.get("opened_at")),
        "phone": eid if etype == "phone" else None,
        "contact_name": mapping.contact_name(w.contact),
    }


def _placed(lead: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Same pipeline and start time: a candidate for the conversation's deal."""
    if lead.get("is_deleted"):
        return False
    if want["pipeline_id"] and int(lead.get("pipeline_id") or 0) != int(want["pipeline_id"]):
        return False
    if want["created_at"]:
        return int(lead.get("created_at") or 0) == want["created_at"]
    return lead.get("name") == want["name"]  # no start time known: the name must do


def _same_customer(contact: Mapping[str, Any] | None, want: Mapping[str, Any]) -> bool:
    if contact is None:
        return False
    if want["phone"]:
        return want["phone"] in mapping.phones(contact, mapping.region_of(want["phone"]))
    return (contact.get("name") or "") == want["contact_name"]


def find_created_leads(client: AmoClient, wanted: Iterable[_Wanted], found_intents: Mapping[str, Intent],
                       settings: Mapping[str, Any]) -> dict[str, tuple[int, int | None]]:
    """conversation id -> (lead id, main contact id) for deals already in amoCRM.

    Conversations starting in the same second are told apart by the deal's contact:
    its phone (or, for hidden numbers, its name) must be the customer's.
    """
    wanted = list(wanted)
    if not wanted:
        return {}
    expected = {w.conv_id: _expected(w, settings) for w in wanted}
    oldest = min(found_intents[w.conv_id].at for w in wanted) - CLOCK_SLACK
    candidates: dict[str, list[dict[str, Any]]] = {}
    pages = 0
    for page in client.pages("/api/v4/leads", {"order[id]": "desc", "with": "contacts"}):
        pages += 1
        leads = mapping.embedded(page, "leads")
        for lead in leads:
            for conv_id, want in expected.items():
                if _placed(lead, want):
                    candidates.setdefault(conv_id, []).append(lead)
        if any(int(lead.get("updated_at") or 0) < oldest for lead in leads):
            break  # ids grow with creation: everything further is older than the attempt
        if pages >= MAX_PAGES:
            log.warning("stopped looking for interrupted deals after %d pages", pages)
            break
    contact_ids = sorted({cid for leads in candidates.values() for lead in leads
                          if (cid := mapping.main_contact_id(lead)) is not None})
    contacts: dict[int, dict[str, Any]] = {}
    for i in range(0, len(contact_ids), 50):
        for contact in client.collect("/api/v4/contacts", "contacts", {"filter[id][]": contact_ids[i:i + 50]}):
            contacts[int(contact["id"])] = contact
    hits: dict[str, tuple[int, int | None]] = {}
    for conv_id, leads in candidates.items():
        want = expected[conv_id]
        mine = [lead for lead in leads
                if _same_customer(contacts.get(mapping.main_contact_id(lead) or 0), want)]
        if mine:
            lead = max(mine, key=lambda x: int(x["id"]))
            hits[conv_id] = (int(lead["id"]), mapping.main_contact_id(lead))
    return hits


def find_created_notes(client: AmoClient, notes: Iterable[Mapping[str, Any]],
                       found_intents: Mapping[str, Intent], path: str = "/api/v4/leads/notes") -> set[str]:
    """request ids (hub message ids) of the given note bodies amoCRM already has."""
    notes = list(notes)
    if not notes:
        return set()
    times = [found_intents[n["request_id"]].at for n in notes]
    params = {
        "filter[updated_at][from]": int(min(times) - CLOCK_SLACK),
        "filter[updated_at][to]": int(max(times) + CLOCK_SLACK),
        "filter[note_type][]": sorted({n["note_type"] for n in notes}),
    }
    have = {(int(n.get("entity_id") or 0), (n.get("params") or {}).get("text"))
            for n in client.collect(path, "notes", params)}
    return {n["request_id"] for n in notes if (n["entity_id"], n["params"]["text"]) in have}


def find_created_tasks(client: AmoClient, tasks: Iterable[Mapping[str, Any]],
                       found_intents: Mapping[str, Intent]) -> set[str]:
    """request ids (hub event ids) of the given task bodies amoCRM already has: the same
    text on the same deal, written since the earliest intent."""
    tasks = list(tasks)
    if not tasks:
        return set()
    times = [found_intents[t["request_id"]].at for t in tasks]
    params = {"filter[entity_type]": "leads", "filter[entity_id][]": sorted({t["entity_id"] for t in tasks}),
              "filter[updated_at][from]": int(min(times) - CLOCK_SLACK)}
    have = {(int(t.get("entity_id") or 0), t.get("text")) for t in client.collect("/api/v4/tasks", "tasks", params)}
    return {t["request_id"] for t in tasks if (t["entity_id"], t["text"]) in have}
