"""Looking in amoCRM for what an interrupted attempt created (intents, recovery)."""
from __future__ import annotations

import time

from connectors.amocrm import intents, mapping, recovery
from connectors.amocrm.leads import Wanted
from connectors.amocrm.settings import AmoCrmSettings
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.test_client import make_client
from tests.support.links import MemoryLinks


def test_intents_tell_a_first_attempt_from_a_repeat():
    links = MemoryLinks()
    first = intents.declare(links, intents.LEAD, ["501", "502"], now=1000.0)
    assert not first["501"].earlier and first["501"].at == 1000.0
    again = intents.declare(links, intents.LEAD, ["501", "503"], now=2000.0)
    assert again["501"].earlier and again["501"].at == 1000.0  # the first attempt's time is kept
    assert not again["503"].earlier
    assert set(intents.earlier(links, intents.LEAD, ["501", "502", "504"])) == {"501", "502"}


def test_deals_of_conversations_started_in_the_same_second_are_told_apart(amo):
    settings = AmoCrmSettings().load({"base_url": amo.base_url, "long_lived_token": amo.token,
                                      "pipeline_id": 7000001, "status_id": 7000011})
    same_second = ev.T0
    wanted = [Wanted(ev.conversation(n, opened=same_second), ev.contact(n)) for n in (1, 2, 3)]
    wanted.append(Wanted(ev.conversation(4, opened=same_second), ev.contact(4, phone=False)))
    client = make_client(amo)
    # An older deal of customer 2 from the same second, in the same pipeline, but long ago
    # as far as amoCRM's updated_at is concerned: it must not be taken.
    old = mapping.lead_body(wanted[1].conversation, wanted[1].contact, settings, contact_id=None)
    old["updated_at"] = int(time.time()) - 7200
    client.post("/api/v4/leads/complex", [old])
    declared = intents.declare(MemoryLinks(), intents.LEAD, [w.conv_id for w in wanted])
    bodies = []
    for w in wanted[::-1]:  # created in another order than asked
        body = mapping.lead_body(w.conversation, w.contact, settings, contact_id=None)
        body["updated_at"] = int(time.time())
        bodies.append(body)
    created = mapping.complex_created(client.post("/api/v4/leads/complex", bodies))
    hits = recovery.find_created_leads(client, wanted, declared, settings)
    assert hits == {rid: (c.lead_id, c.contact_id) for rid, c in created.items()}


def test_nothing_found_when_the_interrupted_post_never_arrived(amo):
    settings = AmoCrmSettings().load({"base_url": amo.base_url, "long_lived_token": amo.token})
    wanted = [Wanted(ev.conversation(1), ev.contact(1))]
    declared = intents.declare(MemoryLinks(), intents.LEAD, ["501"])
    assert recovery.find_created_leads(make_client(amo), wanted, declared, settings) == {}


def test_notes_found_by_deal_and_exact_text(amo):
    client = make_client(amo)
    lead = client.post("/api/v4/leads/complex", [{"name": "x"}])[0]["id"]
    notes = [mapping.note_body(lead, ev.message(1, k), ev.contact(1), "common") for k in range(3)]
    declared = intents.declare(MemoryLinks(), intents.NOTE, [n["request_id"] for n in notes])
    client.post("/api/v4/leads/notes", notes[:2])  # the interrupted request carried two of them
    assert recovery.find_created_notes(client, notes, declared) == {notes[0]["request_id"], notes[1]["request_id"]}
