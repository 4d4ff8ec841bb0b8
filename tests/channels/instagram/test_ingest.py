"""POST /webhooks/instagram/<key>: Meta's signature, the raw body kept first, each mid
applied once, and every kind of customer event mapped onto contacts, conversations and
messages with the same events as WhatsApp's; GET answers Meta's handshake."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from hub.models import Contact, Conversation, Event, LeadAttribution, Message, RawWebhook
from tests.support.instagram import ANA, APP_SECRET, VERIFY_TOKEN, fixture, make_account_channel, post_webhook

AT = datetime.fromtimestamp(1765100101, tz=timezone.utc)
MESSAGE_FIXTURES = {"message__text": "text", "message__image": "image", "message__video": "video",
                    "message__audio": "audio", "message__file": "document", "message__share": "share",
                    "message__story_mention": "story_mention", "message__story_reply": "story_reply",
                    "message__reply": "text", "postback__button": "interactive", "message__quick_reply": "interactive",
                    "referral__ad": "referral", "referral__link": "referral", "message__ad_referral": "text",
                    "reaction__react": "reaction", "reaction__unreact": "reaction", "message__deleted": "revoke",
                    "message__unsupported": "unsupported"}
IGNORED_FIXTURES = ("message__echo", "read__receipt", "comments__new")


def count(runtime, model, *where):
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def events(runtime, type_=None):
    with runtime.db.scope() as session:
        query = select(Event).order_by(Event.occurred_at, Event.id)
        if type_:
            query = query.where(Event.type == type_)
        return [(e.type, e.data) for e in session.scalars(query)]


@pytest.fixture
def account(runtime):
    return make_account_channel(runtime)


def test_every_fixture_is_posted_here():
    from tests.support.instagram import FIXTURES

    assert {p.stem for p in FIXTURES.glob("*.json")} == set(MESSAGE_FIXTURES) | set(IGNORED_FIXTURES)


@pytest.mark.parametrize("name, kind", sorted(MESSAGE_FIXTURES.items()))
def test_each_customer_event_becomes_one_message_with_its_events(client, runtime, account, name, kind):
    channel_id, key = account
    r = post_webhook(client, key, fixture(name))
    assert r.status_code == 200, r.get_data(as_text=True)
    with runtime.db.scope() as session:
        message = session.scalars(select(Message)).one()
        contact = session.scalars(select(Contact)).one()
        conversation = session.scalars(select(Conversation)).one()
        assert (message.type, message.direction, message.status, message.sent_at) == (kind, "in", "received", AT)
        assert message.wa_message_id.startswith("ig:")
        assert (contact.user_id, contact.wa_id) == (f"ig:{ANA}", None)
        assert conversation.last_inbound_at == (None if name == "message__deleted" else AT)
        raw = session.scalars(select(RawWebhook)).one()
        assert (raw.source, raw.status, raw.channel_id) == ("instagram", "processed", channel_id)
    assert sorted(t for t, _ in events(runtime)) == ["conversation.started", "lead.attributed", "message.received"]
    received = events(runtime, "message.received")[0][1]
    assert received["conversation"]["channel"]["kind"] == "instagram"
    assert received["contact"]["user_id"] == f"ig:{ANA}"
    assert received["message"]["type"] == kind


@pytest.mark.parametrize("name", IGNORED_FIXTURES)
def test_echoes_of_strangers_reads_and_comments_are_kept_but_not_messages(client, runtime, account, name):
    """An echo to a customer the hub has no conversation with is kept in the raw
    webhook only (tests/channels/instagram/test_echoes.py has the others)."""
    assert post_webhook(client, account[1], fixture(name)).status_code == 200
    assert count(runtime, Message) == 0 and count(runtime, Contact) == 0
    assert count(runtime, RawWebhook, RawWebhook.status == "processed") == 1


def test_a_repeated_webhook_changes_nothing(client, runtime, account):
    for _ in range(3):
        assert post_webhook(client, account[1], fixture("message__text")).status_code == 200
    assert count(runtime, Message) == 1 and count(runtime, RawWebhook) == 3
    assert len(events(runtime, "message.received")) == 1


@pytest.mark.parametrize("secret, signature", [(None, None), ("wrong-secret-0123456789", None),
                                               (None, "sha256=" + "0" * 64), (None, "sha1=abc"), (None, "")])
def test_a_wrong_or_missing_signature_is_refused_and_nothing_stored(client, runtime, account, secret, signature):
    r = post_webhook(client, account[1], fixture("message__text"), secret=secret, signature=signature)
    assert r.status_code == 401
    assert count(runtime, RawWebhook) == 0 and count(runtime, Message) == 0 and count(runtime, Event) == 0


def test_a_body_signed_then_changed_is_refused(client, runtime, account):
    from hub.channels.meta_signature import sign_meta

    body = fixture("message__text")
    r = post_webhook(client, account[1], body.replace(b"sofa", b"SOFA"), signature=sign_meta(APP_SECRET, body))
    assert r.status_code == 401 and count(runtime, RawWebhook) == 0


def test_an_unknown_key_is_404(client, runtime, account):
    assert post_webhook(client, "nope", fixture("message__text")).status_code == 404
    assert client.get("/webhooks/instagram/nope?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1") \
        .status_code == 404


def test_a_body_that_is_not_instagram_is_kept_failed_and_answered_200(client, runtime, account):
    r = post_webhook(client, account[1], b'{"object": "page", "entry": []}')
    assert r.status_code == 200
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.status == "failed" and "not 'instagram'" in raw.error


def test_the_subscription_handshake(client, account):
    base = f"/webhooks/instagram/{account[1]}?hub.mode=subscribe&hub.challenge=1158201444"
    ok = client.get(f"{base}&hub.verify_token={VERIFY_TOKEN}")
    assert (ok.status_code, ok.get_data(as_text=True)) == (200, "1158201444")
    assert client.get(f"{base}&hub.verify_token=wrong").status_code == 403
    assert client.get(base).status_code == 403


def test_a_reply_and_a_reaction_name_the_message_they_are_about(client, runtime, account):
    for name in ("message__text", "message__reply", "reaction__react"):
        post_webhook(client, account[1], fixture(name))
    with runtime.db.scope() as session:
        original = session.scalars(select(Message).where(Message.type == "text", Message.reply_to.is_(None))).one()
        reply = session.scalars(select(Message).where(Message.reply_to.is_not(None), Message.type == "text")).one()
        reaction = session.scalars(select(Message).where(Message.type == "reaction")).one()
        assert reply.reply_to == reaction.reply_to == original.wa_message_id
        assert reaction.text == "\u2764\ufe0f"
        assert reaction.payload["message"]["reaction"] == {"message_id": original.wa_message_id,
                                                           "emoji": "\u2764\ufe0f"}


def test_a_deleted_message_marks_the_original(client, runtime, account):
    post_webhook(client, account[1], fixture("message__text"))
    post_webhook(client, account[1], fixture("message__deleted"))
    with runtime.db.scope() as session:
        original = session.scalars(select(Message).where(Message.type == "text")).one()
        assert original.payload["revoked_at"] == "2025-12-07T09:35:01Z"


def test_a_press_is_a_button_reply_automations_read(client, runtime, account):
    from hub.automations.runtime import _reply_of

    post_webhook(client, account[1], fixture("message__quick_reply"))
    with runtime.db.scope() as session:
        assert _reply_of(session.scalars(select(Message)).one()) == ("Delivery", "topic_delivery")


def test_media_is_offered_like_whatsapps(client, runtime, account):
    post_webhook(client, account[1], fixture("message__image"))
    media = events(runtime, "message.received")[0][1]["message"]["media"]
    assert media["url"].startswith("/api/v1/messages/") and media["mime_type"] == "image/jpeg"


def test_an_ad_referral_is_the_lead_source(client, runtime, account):
    post_webhook(client, account[1], fixture("referral__ad"))
    source = events(runtime, "lead.attributed")[0][1]["lead_source"]
    assert source["kind"] == "ad_referral" and source["campaign"] == "spring-sale"
    assert source["referral"]["source_id"] == source["referral"]["ad_id"] == "120200000000000001"
    assert source["referral"]["headline"] == "Spring sofa sale" and source["referral"]["ref"] == "spring-sale"


def test_a_tracked_links_code_in_the_ref_is_the_lead_source(client, runtime, account):
    from hub.platform.db import utcnow
    from hub.models import TrackedLink
    from hub.tracking.codes import normalise_static_code

    with runtime.db.scope() as session:
        session.add(TrackedLink(slug="spring", channel_id=account[0], static_code=normalise_static_code("c-AbC123"),
                                campaign="spring", text_template="Hi", utm_source="instagram", created_at=utcnow(),
                                updated_at=utcnow()))
    post_webhook(client, account[1], fixture("referral__link"))
    source = events(runtime, "lead.attributed")[0][1]["lead_source"]
    assert (source["kind"], source["link"], source["code"], source["utm_source"]) == \
        ("tracked_link", "spring", "CABC123", "instagram")
    assert count(runtime, LeadAttribution) == 1


def test_an_event_for_another_account_is_not_applied(client, runtime, account):
    body = json.loads(fixture("message__text"))
    body["entry"][0]["messaging"][0]["recipient"]["id"] = "17841499999999999"
    assert post_webhook(client, account[1], json.dumps(body).encode()).status_code == 200
    assert count(runtime, Message) == 0
