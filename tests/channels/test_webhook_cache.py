"""Each web process's copy of a Telegram bot's or an Instagram account's channel
(hub/channels/webhook_cache.py): a new secret works at once, the old one stops within
the TTL, and a copy does not hide what the ingest must still check on the row."""
from __future__ import annotations

from sqlalchemy import select, update

from hub.app import create_app
from hub.channels.webhook_cache import TTL_SECONDS
from hub.models import Channel, Contact, Event, Message
from hub.platform.db import utcnow
from hub.web.webhooks import CACHES
from tests.support import instagram, telegram


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def process(runtime, kind: str):
    """A web process of its own on the same database, its copies on a hand-moved clock."""
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    ticks = Ticks()
    app.extensions[CACHES][kind].clock = ticks
    return app.test_client(), ticks


def rotate(runtime, channel_id: int, **secrets) -> None:
    with runtime.db.scope() as session:
        channel = session.get(Channel, channel_id)
        channel.secrets_enc = runtime.vault.encrypt({**runtime.vault.decrypt(channel.secrets_enc), **secrets})


def test_a_new_secret_token_works_at_once_and_the_old_one_stops_within_the_ttl(runtime):
    channel_id, key = telegram.make_bot_channel(runtime)
    client, _ = process(runtime, "telegram")
    assert telegram.post_update(client, key, telegram.fixture("message__text")).status_code == 200  # a copy is held
    rotate(runtime, channel_id, secret_token="rotated-secret-token-42")
    assert telegram.post_update(client, key, telegram.fixture("message__photo"), secret="rotated-secret-token-42") \
        .status_code == 200, "a token that fails against the copy is checked against the row again"
    assert telegram.post_update(client, key, telegram.fixture("message__voice")).status_code == 403
    with runtime.db.scope() as session:
        assert len(session.scalars(select(Message)).all()) == 2


def test_a_renamed_bot_shows_its_new_name_within_the_ttl(runtime):
    channel_id, key = telegram.make_bot_channel(runtime)
    client, ticks = process(runtime, "telegram")
    telegram.post_update(client, key, telegram.fixture("message__text"))
    with runtime.db.scope() as session:
        session.execute(update(Channel).where(Channel.id == channel_id).values(name="Renamed bot"))
    ticks.now += TTL_SECONDS + 1
    assert telegram.post_update(client, key, telegram.fixture("message__photo")).status_code == 200
    with runtime.db.scope() as session:
        received = session.scalars(select(Event.data).where(Event.type == "message.received")
                                   .order_by(Event.occurred_at, Event.created_at)).all()
    names = sorted(data["conversation"]["channel"]["name"] for data in received)
    assert names == ["Renamed bot", "Shop bot"], "the first from the copy, the second read again"


def test_a_new_instagram_app_secret_works_at_once_and_the_old_one_stops(runtime):
    channel_id, key = instagram.make_account_channel(runtime)
    client, _ = process(runtime, "instagram")
    assert instagram.post_webhook(client, key, instagram.fixture("message__text")).status_code == 200
    rotate(runtime, channel_id, app_secret="rotated-app-secret-9876543210")
    assert instagram.post_webhook(client, key, instagram.fixture("message__image"),
                                  secret="rotated-app-secret-9876543210").status_code == 200
    assert instagram.post_webhook(client, key, instagram.fixture("message__video")).status_code == 401


def test_an_unreachable_instagram_customer_who_writes_again_is_reachable(runtime, client):
    _, key = instagram.make_account_channel(runtime)
    assert instagram.post_webhook(client, key, instagram.fixture("message__text")).status_code == 200
    with runtime.db.scope() as session:
        session.execute(update(Contact).values(unreachable_at=utcnow(), unreachable_reason="551"))
    assert instagram.post_webhook(client, key, instagram.fixture("message__image")).status_code == 200
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.unreachable_at, contact.unreachable_reason) == (None, None)
