"""A Telegram contact synced to HubSpot before it was linked to a person ends as one
HubSpot contact: contact.linked associates its deals and communications with the
person's contact (archived from its own), leaves a note on its own contact and points the
hub's link at the person's; contact.unlinked points it back for what comes next. A replay
does nothing twice."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from connectors.base import HubEvent
from connectors.hubspot.mapping import message_timestamp_ms, timestamp_to_ms
from hub.crm.store import build_connector
from hub.models import ConnectorRecord
from hub.platform.db import utcnow
from tests.connectors.hubspot import events as ev
from tests.connectors.hubspot.conftest import emu, make_connector  # noqa: F401 (fixture)
from tests.support import person_merges as merges_support
from tests.support.person_merges import deliver_each as deliver, telegram_contact

PERSON = ev.contact(9)


def telegram(*, linked: bool) -> dict[str, Any]:
    return telegram_contact(900, PERSON, linked=linked)


def conversation_events(n: int, contact: dict[str, Any]) -> list[HubEvent]:
    data = {"conversation": ev.conversation(n), "contact": contact}
    return [HubEvent(f"evt-start-{n}", "conversation.started", 1, ev.T0, data, ordering_key=f"conversation:{n}"),
            HubEvent(f"evt-msg-{n}", "message.received", 1, ev.T0, {**data, "message": ev.message(100 + n)},
                     ordering_key=f"conversation:{n}")]


def merge_event(type_: str, merge_id: int = 7) -> HubEvent:
    return merges_support.merge_event(type_, 900, PERSON, reason="operator", at=ev.T0, merge_id=merge_id)


def connector(runtime, emu):  # noqa: F811
    connector_id = make_connector(runtime, emu)
    with runtime.db.scope() as session:
        return build_connector(runtime.db, runtime.vault, session.get(ConnectorRecord, connector_id), clock=utcnow,
                               http_timeout=5)


def deal_contacts(emu, n: int) -> set[str]:  # noqa: F811
    """The contacts of the deal holding the communication of conversation n's message."""
    wanted = message_timestamp_ms(ev.message(100 + n))
    body_id = next(i for i, r in emu.state.objects["communications"].items()
                   if timestamp_to_ms(r["properties"].get("hs_timestamp")) == wanted)
    (deal,) = emu.associated("communications", body_id, "deals")
    return set(emu.associated("deals", deal, "contacts"))


def notes_on(emu, contact_crm: str) -> list[str]:  # noqa: F811
    return [emu.state.objects["notes"][i]["properties"]["hs_note_body"]
            for i in sorted(emu.associated("contacts", contact_crm, "notes"), key=int)]


def test_a_contact_synced_before_the_link_is_folded_into_the_persons_contact_once(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    deliver(hubspot, conversation_events(1, PERSON))
    (person_crm,) = emu.state.objects["contacts"]
    deliver(hubspot, conversation_events(2, telegram(linked=False)))
    (own_crm,) = set(emu.state.objects["contacts"]) - {person_crm}
    assert deal_contacts(emu, 2) == {own_crm}

    linked = merge_event("contact.linked")
    deliver(hubspot, [linked, replace(linked, attempt=2)])
    assert deal_contacts(emu, 2) == {person_crm}
    assert emu.associated("contacts", own_crm, "deals") == {}
    assert emu.associated("contacts", own_crm, "communications") == {}
    assert len(emu.associated("contacts", person_crm, "communications")) == 2  # both channels' timeline
    (note,) = notes_on(emu, own_crm)
    assert note.startswith(f"Merged into contact #{person_crm}: hub contact 900 (Ana on Telegram) is one person "
                           "with hub contact 9 (Customer 9), merge 7.")

    deliver(hubspot, conversation_events(3, telegram(linked=True)))
    assert deal_contacts(emu, 3) == {person_crm}
    assert len(emu.state.objects["contacts"]) == 2

    unlinked = merge_event("contact.unlinked")
    deliver(hubspot, [unlinked, replace(unlinked, attempt=2)])
    assert notes_on(emu, own_crm)[1:] == [
        "Merge 7 undone: hub contact 900 (Ana on Telegram) is its own person again; "
        "its new conversations come back here."]
    deliver(hubspot, conversation_events(4, telegram(linked=False)))
    assert deal_contacts(emu, 4) == {own_crm}
    assert len(emu.state.objects["contacts"]) == 2


def test_a_note_an_interrupted_try_wrote_is_found_not_written_again(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    deliver(hubspot, conversation_events(1, PERSON) + conversation_events(2, telegram(linked=False)))
    deliver(hubspot, [merge_event("contact.linked")])
    # the answer to the note was lost: only the try marker is left
    from connectors.hubspot import merges
    with runtime.db.scope() as session:
        from sqlalchemy import delete
        from hub.models import CrmLink
        session.execute(delete(CrmLink).where(CrmLink.entity_type == merges.NOTE))
    deliver(hubspot, [replace(merge_event("contact.linked"), attempt=2)])
    assert len(emu.state.objects["notes"]) == 1


def test_a_contact_never_synced_needs_nothing(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    outcome, = hubspot.deliver([merge_event("contact.linked")])
    assert outcome.response == {"skipped": "the contact had no HubSpot contact of its own"}
    assert emu.state.objects["contacts"] == {}


def test_an_inbox_thread_of_a_linked_contact_is_sent_by_the_persons_phone():
    from connectors.hubspot.inbox import publish_body
    data = {"conversation": ev.conversation(3), "message": ev.message(103), "contact": telegram(linked=True)}
    body = publish_body(data, "acc-1", "+15550001111")
    assert body["senders"][0]["deliveryIdentifier"] == {"type": "HS_PHONE_NUMBER", "value": PERSON["phone"]}
    assert body["integrationThreadId"] == "3"  # each channel's conversation stays its own thread
