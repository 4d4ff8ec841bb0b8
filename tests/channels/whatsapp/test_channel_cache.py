"""The webhook route's copy of its channel (hub/channels/whatsapp/inbound/channel_cache.py):
a changed secret, token or name takes effect within the TTL in every process, a new app
secret at once, and last_webhook_at is written coarsely."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hub.app import create_app
from hub.channels.whatsapp.channels import update_channel
from hub.channels.whatsapp.inbound.channel_cache import TTL_SECONDS
from hub.platform.db import utcnow
from hub.models import Channel, Event
from hub.web.webhooks import CACHES
from tests.support.whatsapp import fixture, make_channel, post_signed

NEW_SECRET = "rotated-app-secret-9876543210"


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def process(runtime):
    """Another web process on the same database: an app of its own, with its own copies."""
    def start():
        app = create_app(runtime=runtime)
        app.config["TESTING"] = True
        ticks = Ticks()
        app.extensions[CACHES]["whatsapp"].clock = ticks
        return app.test_client(), ticks
    return start


def change_channel(runtime, channel_id: int, **data) -> None:
    with runtime.db.scope() as session:
        update_channel(session, runtime.vault, session.get(Channel, channel_id), data, now=utcnow())


def test_a_new_app_secret_works_at_once_and_the_old_one_stops_within_the_ttl(runtime, process):
    channel_id, key = make_channel(runtime)
    one, one_ticks = process()
    two, _ = process()
    assert post_signed(one, key, fixture("text__plain")).status_code == 200  # `one` now holds a copy
    change_channel(runtime, channel_id, app_secret=NEW_SECRET)

    assert post_signed(two, key, fixture("image__caption"), secret=NEW_SECRET).status_code == 200
    assert post_signed(one, key, fixture("video__plain"), secret=NEW_SECRET).status_code == 200, \
        "a signature that fails against the copy is checked against the row again"
    assert post_signed(one, key, fixture("audio__voice")).status_code == 401, "that read refreshed the copy"

    other, other_ticks = process()
    assert post_signed(other, key, fixture("document__filename"), secret=NEW_SECRET).status_code == 200
    change_channel(runtime, channel_id, app_secret="third-app-secret-000111")
    other_ticks.now += TTL_SECONDS + 1
    assert post_signed(other, key, fixture("sticker__animated"), secret=NEW_SECRET).status_code == 401, \
        "past the TTL the copy is read again: the replaced secret no longer verifies"


def test_a_replaced_360dialog_header_token_stops_within_the_ttl(client, runtime, app):
    channel_id, key = make_channel(runtime, provider="360dialog")
    ticks = Ticks()
    app.extensions[CACHES]["whatsapp"].clock = ticks
    body = fixture("text__dialog360")

    def post(token: str) -> int:
        return client.post(f"/webhooks/whatsapp/{key}", data=body, headers={"X-Hub-Token": token}).status_code

    assert post("d360-webhook-token") == 200
    change_channel(runtime, channel_id, webhook_token="new-d360-webhook-token")
    ticks.now += TTL_SECONDS + 1
    assert post("d360-webhook-token") == 401
    assert post("new-d360-webhook-token") == 200


def test_a_renamed_channel_is_named_in_events_once_the_ttl_has_passed(client, runtime, app):
    channel_id, key = make_channel(runtime, name="Sales")
    ticks = Ticks()
    app.extensions[CACHES]["whatsapp"].clock = ticks
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    change_channel(runtime, channel_id, name="Sales EU", display_number="+44 20 0000 0000")
    ticks.now += TTL_SECONDS + 1
    assert post_signed(client, key, fixture("image__caption")).status_code == 200
    with runtime.db.scope() as session:
        events = session.scalars(select(Event).where(Event.type == "message.received")).all()
        names = sorted(e.data["conversation"]["channel"]["name"] for e in events)
        numbers = {e.data["conversation"]["channel"]["display_number"] for e in events}
    assert names == ["Sales", "Sales EU"] and "+44 20 0000 0000" in numbers


def test_an_unknown_key_is_refused_and_not_remembered(client, runtime):
    assert post_signed(client, "no-such-channel", fixture("text__plain")).status_code == 404
    _, key = make_channel(runtime)
    assert post_signed(client, key, fixture("text__plain")).status_code == 200, "a new channel works at once"


def test_last_webhook_at_is_written_when_stale_only(client, runtime, app):
    channel_id, key = make_channel(runtime)
    ticks = Ticks()
    app.extensions[CACHES]["whatsapp"].clock = ticks

    def last_webhook_at():
        with runtime.db.scope() as session:
            return session.get(Channel, channel_id).last_webhook_at

    assert last_webhook_at() is None
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    first = last_webhook_at()
    assert first is not None
    assert post_signed(client, key, fixture("image__caption")).status_code == 200
    assert last_webhook_at() == first, "not written again within seconds"

    hour_ago = utcnow() - timedelta(hours=1)
    with runtime.db.scope() as session:
        session.execute(update(Channel).where(Channel.id == channel_id).values(last_webhook_at=hour_ago))
    ticks.now += TTL_SECONDS + 1
    assert post_signed(client, key, fixture("video__plain")).status_code == 200
    assert last_webhook_at() > hour_ago
