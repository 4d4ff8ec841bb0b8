"""One person across channels: a Telegram user who shares their own phone is linked to
the WhatsApp contact with it; links are recorded and undone exactly; events name the
person so CRM connectors can key on it."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from hub.conversations.store import upsert_contact
from hub.models import Contact, Event
from hub.models.contacts import ContactMerge
from hub.conversations.persons import OPERATOR, MergeRefused, link, undo
from tests.support.telegram import fixture, make_bot_channel, post_update

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def share(contact_user_id=111222333, phone="+351 912 345 678", update_id=400000008):
    body = json.loads(fixture("message__contact"))
    body["update_id"] = update_id
    body["message"]["message_id"] += update_id - 400000008
    body["message"]["contact"].update(user_id=contact_user_id, phone_number=phone)
    return json.dumps(body)


def whatsapp_contact(runtime, wa_id="351912345678", name="Ana WA"):
    with runtime.db.scope() as session:
        return upsert_contact(session, wa_id=wa_id, user_id=None, name=name, now=NOW).id


def telegram_contact(session):
    return session.scalars(select(Contact).where(Contact.user_id == "tg:111222333")).one()


def events(session, type_):
    return [e.data for e in session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))]


@pytest.fixture
def bot(runtime):
    return make_bot_channel(runtime)


def test_a_shared_own_phone_known_from_whatsapp_links_the_telegram_user(client, runtime, bot):
    wa = whatsapp_contact(runtime)
    assert post_update(client, bot[1], share()).status_code == 200
    with runtime.db.scope() as session:
        tg = telegram_contact(session)
        assert (tg.person_id, tg.phone) == (wa, "+351912345678")
        merge = session.scalars(select(ContactMerge)).one()
        assert (merge.contact_id, merge.person_id, merge.reason, merge.undone_at) == (tg.id, wa, "shared_phone", None)
        assert merge.moved == {"contacts": {str(tg.id): None}, "phone": {"before": None, "after": "+351912345678"}}
        linked = events(session, "contact.linked")
        assert len(linked) == 1 and linked[0]["person"]["id"] == wa and linked[0]["contact"]["id"] == tg.id
        received = events(session, "message.received")[0]["contact"]
        assert received["person_id"] == wa
        assert received["person"] == {"id": wa, "wa_id": "351912345678", "user_id": None,
                                      "phone": "+351912345678", "name": "Ana WA"}
        started = events(session, "conversation.started")[0]["contact"]
        assert started["person"]["id"] == wa


@pytest.mark.parametrize("card, phone, stored", [(999, "+351912345678", None), (None, "+351912345678", None),
                                                 (111222333, "+351 000", None),
                                                 (111222333, "+351919999999", "+351919999999"),
                                                 (111222333, "351 919 999 999", "+351919999999")])
def test_someone_elses_card_or_an_unknown_phone_links_nothing(client, runtime, bot, card, phone, stored):
    """Only the user's own phone is theirs: kept on the contact though no WhatsApp contact has it."""
    whatsapp_contact(runtime)
    assert post_update(client, bot[1], share(contact_user_id=card, phone=phone)).status_code == 200
    with runtime.db.scope() as session:
        tg = telegram_contact(session)
        assert (tg.person_id, tg.phone) == (None, stored)
        assert session.scalars(select(ContactMerge)).all() == []
        assert events(session, "contact.linked") == []
        assert "person" not in events(session, "message.received")[0]["contact"]


def test_an_unknown_own_phone_reaches_the_next_events_contact(client, runtime, bot):
    assert post_update(client, bot[1], share(phone="+351919999999")).status_code == 200
    assert post_update(client, bot[1], share(phone="+351919999999", update_id=400000009)).status_code == 200
    with runtime.db.scope() as session:
        assert telegram_contact(session).phone == "+351919999999"
        received = events(session, "message.received")
        assert [r["contact"]["phone"] for r in received] == ["+351919999999", "+351919999999"]


def test_sharing_again_links_once(client, runtime, bot):
    whatsapp_contact(runtime)
    post_update(client, bot[1], share())
    post_update(client, bot[1], share(update_id=400000009))
    with runtime.db.scope() as session:
        assert len(session.scalars(select(ContactMerge)).all()) == 1
        assert len(events(session, "message.received")) == 2


def test_undo_puts_back_exactly_what_the_link_changed(client, runtime, bot):
    wa = whatsapp_contact(runtime)
    post_update(client, bot[1], share())
    with runtime.db.scope() as session:
        undo(session, session.scalars(select(ContactMerge)).one(), now=NOW, by_id=None)
    with runtime.db.scope() as session:
        tg = telegram_contact(session)
        assert (tg.person_id, tg.phone) == (None, None)
        merge = session.scalars(select(ContactMerge)).one()
        assert merge.undone_at == NOW
        unlinked = events(session, "contact.unlinked")
        assert len(unlinked) == 1 and unlinked[0]["person"]["id"] == wa
        with pytest.raises(MergeRefused, match="undone before"):
            undo(session, merge, now=NOW)


def test_a_merge_brings_the_contacts_linked_to_it_and_undo_takes_them_back(runtime):
    a, b, c = (whatsapp_contact(runtime, wa_id=w, name=n) for w, n in
               (("4915100000001", "A"), ("4915100000002", "B"), ("4915100000003", "C")))
    with runtime.db.scope() as session:
        first = link(session, session.get(Contact, c), session.get(Contact, b), reason=OPERATOR, now=NOW).id
    with runtime.db.scope() as session:
        second = link(session, session.get(Contact, b), session.get(Contact, a), reason=OPERATOR, now=NOW).id
    with runtime.db.scope() as session:
        assert [session.get(Contact, i).person_id for i in (a, b, c)] == [None, a, a]  # never a chain
        with pytest.raises(MergeRefused, match="already one person"):
            link(session, session.get(Contact, a), session.get(Contact, c), reason=OPERATOR, now=NOW)
        with pytest.raises(MergeRefused, match="linked elsewhere"):
            undo(session, session.get(ContactMerge, first), now=NOW)
    with runtime.db.scope() as session:
        undo(session, session.get(ContactMerge, second), now=NOW)
    with runtime.db.scope() as session:
        assert [session.get(Contact, i).person_id for i in (a, b, c)] == [None, None, b]
        assert [session.get(Contact, i).phone for i in (a, b, c)] == \
            ["+4915100000001", "+4915100000002", "+4915100000003"]
