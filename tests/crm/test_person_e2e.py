"""One person across channels, end to end: a WhatsApp customer, then the same person on
Telegram sharing their own phone, reach the amoCRM emulator as ONE contact with both
conversations on its timeline; an operator's merge and its undo, checked by counts."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from connectors.amocrm import benchkit as amo_kit
from hub.crm.store import create_connector
from hub.conversations.actions import close
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Contact, Conversation, Delivery, Message
from hub.models.contacts import ContactMerge
from hub.conversations.persons import OPERATOR, link, undo
from tests.support import telegram, wa_emulator
from tests.support.clock import FakeClock

pytestmark = pytest.mark.slow
PHONE = "351912345678"


def drain(runtime):
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    for _ in range(50):
        if not worker.drain():
            break
    with runtime.db.scope() as session:
        return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def timeline(amo) -> dict[int, Counter]:
    """amoCRM contact id -> notes per deal on its timeline."""
    store = amo.store
    out: dict[int, Counter] = {}
    for note in store.notes.values():
        if note["entity"] == "leads":
            for contact_id in store.leads[note["entity_id"]]["contact_ids"]:
                out.setdefault(contact_id, Counter())[note["entity_id"]] += 1
    return out


@pytest.fixture
def hub(client, runtime):
    """amoCRM, a WhatsApp number and a Telegram bot, wired to the hub."""
    def start(**settings):
        clock = FakeClock(utcnow())
        amo_cm, wa_cm, tg_cm = amo_kit.start_emulator(), wa_emulator.wired(runtime, client, clock), \
            telegram.wired(runtime, client)
        amo, wa, tg = amo_cm.__enter__(), wa_cm.__enter__(), tg_cm.__enter__()
        started.extend([tg_cm, wa_cm, amo_cm])
        with runtime.db.scope() as session:
            create_connector(session, runtime.vault, kind="amocrm", name="amo",
                             settings={**amo_kit.connector_settings(amo.base_url), "timeout_seconds": 5, **settings},
                             now=utcnow())
        return amo, wa, tg
    started: list = []
    yield start
    for cm in started:
        cm.__exit__(None, None, None)


def whatsapp_then_telegram(runtime, amo, wa, tg):
    customer = wa["emu"].customer(wa["number"], PHONE, name="Ana Silva")
    customer.send_text("Hello from WhatsApp")
    customer.send_text("Is the sofa in stock?")
    wa["emu"].flush()
    assert drain(runtime) == {"done": 4}  # started, attributed, two messages
    ana = tg["emu"].user(tg["bot"], 111222333, "Ana", username="ana_silva")
    ana.share_contact(f"+{PHONE}")
    ana.send_text("Hello from Telegram")
    other = tg["emu"].user(tg["bot"], 444555666, "Bruno")
    other.send_text("Hi, I am someone else")
    assert tg["emu"].flush() == 3
    return ana, other


def test_a_telegram_user_sharing_a_whatsapp_phone_is_one_amocrm_contact_with_the_open_deal(runtime, hub):
    amo, wa, tg = hub()
    whatsapp_then_telegram(runtime, amo, wa, tg)
    assert drain(runtime) == {"done": 4 + 4 + 3 + 1}  # Ana twice: started, attributed, 2 messages; Bruno: 3; contact.linked
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 3
        assert session.scalar(select(func.count()).select_from(Message)) == 5
        assert session.scalar(select(func.count()).select_from(ContactMerge)) == 1
    counts = amo.counts()
    assert {k: counts[k] for k in ("contacts", "deals", "notes")} == {"contacts": 2, "deals": 2, "notes": 5}
    notes = sorted(sorted(per_deal.values()) for per_deal in timeline(amo).values())
    assert notes == [[1], [4]]  # Ana: both conversations on one open deal; Bruno: his own


def test_with_new_channel_opens_deal_the_person_gets_a_second_deal_on_the_same_contact(runtime, hub):
    amo, wa, tg = hub(new_channel_opens_deal=True)
    whatsapp_then_telegram(runtime, amo, wa, tg)
    drain(runtime)
    counts = amo.counts()
    assert {k: counts[k] for k in ("contacts", "deals", "notes")} == {"contacts": 2, "deals": 3, "notes": 5}
    assert sorted(sorted(per_deal.values()) for per_deal in timeline(amo).values()) == [[1], [2, 2]]


def test_an_operator_merge_and_its_undo(runtime, hub):
    amo, wa, tg = hub()
    _, other = whatsapp_then_telegram(runtime, amo, wa, tg)
    drain(runtime)
    now = utcnow()
    with runtime.db.scope() as session:
        bruno = session.scalar(select(Contact).where(Contact.user_id == "tg:444555666"))
        ana = session.scalar(select(Contact).where(Contact.wa_id == PHONE))
        merge_id = link(session, bruno, ana, reason=OPERATOR, now=now).id
        close(session, session.scalar(select(Conversation).where(Conversation.contact_id == bruno.id)),
              reason="merged", now=now)
    other.send_text("A new question after the merge")
    tg["emu"].flush()
    drain(runtime)
    counts = amo.counts()
    assert {k: counts[k] for k in ("contacts", "deals", "notes")} == {"contacts": 2, "deals": 2, "notes": 6}
    # Bruno's deal moved to Ana's contact with the merge (one amoCRM contact per person);
    # his new question went on to that deal
    assert sorted(sorted(per_deal.values()) for per_deal in timeline(amo).values()) == [[2, 4]]
    with runtime.db.scope() as session:
        undo(session, session.get(ContactMerge, merge_id), now=now)
        bruno = session.scalar(select(Contact).where(Contact.user_id == "tg:444555666"))
        close(session, session.scalar(select(Conversation).where(Conversation.contact_id == bruno.id,
                                                                 Conversation.status == "open")),
              reason="unmerged", now=now)
    other.send_text("And one after the undo")
    tg["emu"].flush()
    statuses = drain(runtime)
    assert set(statuses) == {"done"}, statuses
    counts = amo.counts()
    # the undo points Bruno back at his own contact; the deal moved to Ana stays hers, so
    # his next message opens a new deal on his contact
    assert {k: counts[k] for k in ("contacts", "deals", "notes")} == {"contacts": 2, "deals": 3, "notes": 7}
    assert sorted(sorted(per_deal.values()) for per_deal in timeline(amo).values()) == [[1], [2, 4]]
