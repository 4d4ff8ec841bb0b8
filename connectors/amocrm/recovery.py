"""Finding what an interrupted attempt may already have created in amoCRM.

Used only when an intent (intents.py) shows an earlier attempt got as far as sending the
POST. Deals: amoCRM hands out ids in creation order, and our deals carry updated_at =
the time of the attempt, so the newest deals (order[id]=desc) are read back until they
are older than the first intent; a deal matches a conversation by name, pipeline and
created_at (the conversation's start). Notes: the notes changed around the intent's time
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
    return {
        "name": mapping.deal_name(settings.get("deal_name_template") or "WhatsApp: {contact_name}",
                                  w.conversation, w.contact),
        "pipeline_id": settings.get("pipeline_id"),
        "created_at": mapping.unix(w.conversation.get("opened_at")),
    }


def _matches(lead: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    if lead.get("is_deleted") or lead.get("name") != want["name"]:
        return False
    if want["pipeline_id"] and int(lead.get("pipeline_id") or 0) != int(want["pipeline_id"]):
        return False
    return not want["created_at"] or int(lead.get("created_at") or 0) == want["created_at"]


def find_created_leads(client: AmoClient, wanted: Iterable[_Wanted], found_intents: Mapping[str, Intent],
                       settings: Mapping[str, Any]) -> dict[str, tuple[int, int | None]]:
    """conversation id -> (lead id, main contact id) for deals already in amoCRM."""
    wanted = list(wanted)
    if not wanted:
        return {}
    expected = {w.conv_id: _expected(w, settings) for w in wanted}
    oldest = min(found_intents[w.conv_id].at for w in wanted) - CLOCK_SLACK
    hits: dict[str, tuple[int, int | None]] = {}
    pages = 0
    for page in client.pages("/api/v4/leads", {"order[id]": "desc", "with": "contacts"}):
        pages += 1
        leads = mapping.embedded(page, "leads")
        for lead in leads:
            for conv_id, want in expected.items():
                if conv_id not in hits and _matches(lead, want):
                    hits[conv_id] = (int(lead["id"]), mapping.main_contact_id(lead))
        if len(hits) == len(expected):
            break
        if any(int(lead.get("updated_at") or 0) < oldest for lead in leads):
            break  # ids grow with creation: everything further is older than the attempt
        if pages >= MAX_PAGES:
            log.warning("stopped looking for interrupted deals after %d pages", pages)
            break
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
