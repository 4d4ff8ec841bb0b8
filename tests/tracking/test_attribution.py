"""Attribution of a new conversation from its first message: codes, expiry, one-time
matching, static codes, fallbacks, and two conversations racing for one code."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from hub.platform.db import utcnow
from hub.models import Conversation, Event, LeadAttribution, Message, TrackedLink, Visit
from hub.tracking.matching import claim_code
from tests.conftest import BACKEND, make_config
from tests.support.locks import wait_for_lock_waiter
from tests.support.tracking import make_link, prefilled, text_message, visit
from tests.support.whatsapp import make_channel, post_signed

REFERRAL = {"source_url": "https://fb.me/3cr4Wqqkv?utm_source=facebook", "source_id": "120208", "source_type": "ad",
            "headline": "Sofas -30%", "body": "Only this week", "media_type": "image", "image_url": "https://x",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ"}


@pytest.fixture
def channel(runtime):
    return make_channel(runtime)


@pytest.fixture
def link(runtime, channel):
    return make_link(runtime, channel[0])


def conversation_of(runtime, wa_id: str = "15557654321") -> Conversation:
    from hub.models import Contact

    with runtime.db.scope() as session:
        return session.scalars(select(Conversation).join(Contact, Contact.id == Conversation.contact_id)
                               .where(Contact.wa_id == wa_id).order_by(Conversation.id.desc())).first()


def send(client, channel, body: str, **kwargs):
    r = post_signed(client, channel[1], text_message(body, **kwargs))
    assert r.status_code == 200
    return r


def test_the_code_in_the_first_message_attributes_the_visit(client, runtime, channel, link):
    r, code = visit(client, utm_source="google", utm_campaign="spring", gclid="G-1")
    send(client, channel, f"Hi! Do you have grey sofas? {prefilled(r)}")
    conv = conversation_of(runtime)
    source = conv.lead_source
    assert source["kind"] == "tracked_link" and source["code"] == code
    assert (source["utm_source"], source["utm_medium"], source["utm_campaign"], source["gclid"]) == \
        ("google", "button", "spring", "G-1")  # utm_medium: the link's default
    assert source["link"] == "spring-sale" and source["campaign"] == "Spring sale"
    assert source["clean_text"] == "Hi! Do you have grey sofas? Hello!"
    with runtime.db.scope() as session:
        v = session.scalars(select(Visit)).one()
        assert v.live_code is None and v.matched_at is not None
        assert source["visit_id"] == v.id and source["visited_at"]
        msg = session.scalars(select(Message)).one()
        assert msg.text.endswith(code)  # what the user wrote, untouched
        assert msg.payload["tracking"] == {"code": code, "link": "spring-sale",
                                           "clean_text": "Hi! Do you have grey sofas? Hello!"}
        attribution = session.scalars(select(LeadAttribution)).one()
        assert (attribution.conversation_id, attribution.link_id, attribution.visit_id) == (conv.id, link, v.id)
        event = session.scalars(select(Event).where(Event.type == "lead.attributed")).one()
        assert event.data["lead_source"] == source


def test_a_code_is_never_matched_twice(client, runtime, channel, link):
    r, code = visit(client)
    send(client, channel, prefilled(r), wa_id="15550000001")
    send(client, channel, prefilled(r), wa_id="15550000002")  # someone else, same code
    assert conversation_of(runtime, "15550000001").lead_source["kind"] == "tracked_link"
    assert conversation_of(runtime, "15550000002").lead_source["kind"] == "direct"


def test_the_same_user_in_a_later_conversation_does_not_match_again(client, runtime, channel, link):
    from hub.conversations.actions import close

    r, code = visit(client)
    send(client, channel, prefilled(r))
    with runtime.db.scope() as session:
        close(session, session.scalars(select(Conversation)).one(), reason="done", now=utcnow())
    send(client, channel, prefilled(r))
    assert conversation_of(runtime).lead_source["kind"] == "direct"


def test_only_the_first_message_of_a_conversation_is_looked_at(client, runtime, channel, link):
    send(client, channel, "Hello, a question first")
    r, code = visit(client)
    send(client, channel, prefilled(r))
    assert conversation_of(runtime).lead_source["kind"] == "direct"
    with runtime.db.scope() as session:
        assert session.scalars(select(Visit)).one().live_code == code  # still live for its real sender


@pytest.mark.parametrize("days_ago, window, kind", [
    (6, 7, "tracked_link"),
    (8, 7, "direct"),
    (2, 1, "direct"),
    (20, 30, "tracked_link"),
])
def test_codes_expire_after_the_attribution_window(client, runtime, database_url, tmp_path, channel, link,
                                                   days_ago, window, kind):
    from hub.app import create_app

    r, code = visit(client)
    with runtime.db.scope() as session:
        session.execute(update(Visit).values(visited_at=utcnow() - timedelta(days=days_ago)))
    app = create_app(make_config(database_url, tmp_path, tracking__attribution_window_days=window))
    send(app.test_client(), channel, prefilled(r))
    app.extensions["hub"].db.dispose()
    assert conversation_of(runtime).lead_source["kind"] == kind


def test_expiry_is_judged_at_the_message_time_not_at_receipt(client, runtime, channel, link):
    r, code = visit(client)
    with runtime.db.scope() as session:
        session.execute(update(Visit).values(visited_at=utcnow() - timedelta(days=10)))
    # Sent 9 days ago (within 7 days of the visit), delivered only now (a replay, an outage).
    send(client, channel, prefilled(r), timestamp=int(time.time()) - 9 * 24 * 3600)
    assert conversation_of(runtime).lead_source["kind"] == "tracked_link"


def test_a_static_code_matches_every_time_with_the_link_defaults(client, runtime, channel):
    make_link(runtime, channel[0], slug="flyer", static_code="FLYER25", campaign="Print", utm_source="flyer",
              utm_medium="offline", text_template="Hi! Code from the flyer: {code}")
    send(client, channel, "Hi! Code from the flyer: FLYER25", wa_id="15550000001")
    send(client, channel, "hi, code from the flyer: flyer 25 - any discount?", wa_id="15550000002")
    for wa_id, clean in (("15550000001", "Hi!"), ("15550000002", "hi, any discount?")):
        source = conversation_of(runtime, wa_id).lead_source
        assert source["kind"] == "tracked_link" and source["code"] == "FLYER25" and source["visit_id"] is None
        assert (source["utm_source"], source["utm_medium"], source["campaign"]) == ("flyer", "offline", "Print")
        assert source["clean_text"] == clean
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(LeadAttribution)) == 2


def test_an_inactive_static_link_is_not_matched(client, runtime, channel):
    link_id = make_link(runtime, channel[0], slug="flyer", static_code="FLYER25")
    with runtime.db.scope() as session:
        session.get(TrackedLink, link_id).active = False
    send(client, channel, "Code FLYER25")
    assert conversation_of(runtime).lead_source["kind"] == "direct"


def test_a_code_of_another_numbers_link_is_not_matched(client, runtime, channel):
    other_id, _ = make_channel(runtime, phone_number_id="2200000000000099", name="Support")
    make_link(runtime, other_id, slug="support")
    r, code = visit(client, "support")
    send(client, channel, prefilled(r))
    assert conversation_of(runtime).lead_source["kind"] == "direct"
    with runtime.db.scope() as session:
        assert session.scalars(select(Visit)).one().live_code == code


def test_a_visit_code_wins_over_a_static_code(client, runtime, channel, link):
    make_link(runtime, channel[0], slug="flyer", static_code="FLYER25")
    r, code = visit(client)
    send(client, channel, f"FLYER25 and {code}")
    assert conversation_of(runtime).lead_source["code"] == code


def test_referral_is_kept_beside_a_tracked_code_and_used_without_one(client, runtime, channel, link):
    import json

    r, code = visit(client, utm_source="site")
    body = json.loads(text_message(prefilled(r), wa_id="15550000001"))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = REFERRAL
    post_signed(client, channel[1], json.dumps(body).encode())
    source = conversation_of(runtime, "15550000001").lead_source
    assert source["kind"] == "tracked_link" and source["referral"]["ctwa_clid"] == REFERRAL["ctwa_clid"]
    body = json.loads(text_message("Hi, about the ad", wa_id="15550000002"))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = REFERRAL
    post_signed(client, channel[1], json.dumps(body).encode())
    source = conversation_of(runtime, "15550000002").lead_source
    assert source["kind"] == "ad_referral" and source["utm_source"] == "facebook" and source["code"] is None


def test_a_forwarded_first_message_still_matches(client, runtime, channel, link):
    r, code = visit(client)
    send(client, channel, f"Переслано\n{prefilled(r).lower()}", forwarded=True)
    assert conversation_of(runtime).lead_source["code"] == code


def test_every_lead_source_kind_has_the_same_keys(client, runtime, channel, link):
    r, _ = visit(client)
    send(client, channel, prefilled(r), wa_id="15550000001")
    send(client, channel, "just hello", wa_id="15550000002")
    tracked = conversation_of(runtime, "15550000001").lead_source
    direct = conversation_of(runtime, "15550000002").lead_source
    assert set(tracked) == set(direct)
    assert all(v is None for k, v in direct.items() if k != "kind")


def test_two_transactions_quoting_one_code_first_wins(client, runtime, channel, link):
    r, code = visit(client)
    message = prefilled(r)
    now = utcnow()
    first_session, second_session = runtime.db.sessionmaker(), runtime.db.sessionmaker()
    outcome: dict = {}
    try:
        first = claim_code(first_session, message, channel_id=channel[0], at=now, now=now)
        assert first is not None and first.visit.code == code

        def second() -> None:
            try:
                outcome["claim"] = claim_code(second_session, message, channel_id=channel[0], at=now, now=now)
                second_session.commit()
            except Exception as exc:  # pragma: no cover - reported below
                outcome["error"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        if BACKEND == "postgres":
            wait_for_lock_waiter(runtime, "the second claim")  # the second UPDATE really waits on the row
        first_session.commit()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        first_session.close()
        second_session.close()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["claim"] is None


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_webhooks_quoting_one_code_credit_one_conversation(app, runtime, channel, link, round_):
    client = app.test_client()
    r, code = visit(client)
    bodies = [text_message(prefilled(r), wa_id=f"1555000000{i}") for i in (1, 2)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post(body: bytes) -> None:
        own = app.test_client()
        barrier.wait()
        statuses.append(post_signed(own, channel[1], body).status_code)

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200, 200]
    kinds = sorted(conversation_of(runtime, f"1555000000{i}").lead_source["kind"] for i in (1, 2))
    assert kinds == ["direct", "tracked_link"]
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(LeadAttribution)) == 1
