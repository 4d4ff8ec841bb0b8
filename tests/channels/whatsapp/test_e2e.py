"""End to end with the emulator: customers write, the hub stores exactly what happened,
replies go out inside the window, are refused after it, and templates are billed."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Channel, Contact, Conversation, Message
from tests.support.clock import FakeClock
from tests.support.wa_emulator import wired, worker

pytestmark = pytest.mark.slow

ORDER_UPDATE = [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}]


def count(runtime, model, *where):
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def conversation_of(runtime, wa_id):
    with runtime.db.scope() as session:
        return session.scalar(select(Conversation.id).join(Contact).where(Contact.wa_id == wa_id))


def test_500_messages_from_100_users_with_duplicates(client, runtime, admin_headers):
    now = utcnow()
    clock = FakeClock(now - timedelta(hours=25))
    with wired(runtime, client, clock, duplicate_ratio=0.1, batch_size=7) as w:
        emu, number = w["emu"], w["number"]
        emu.add_template("1100000000000001", name="order_update", language="en", category="UTILITY",
                         components=ORDER_UPDATE)
        late = emu.customer(number, "15550009999", name="Late")
        late.send_text("I wrote yesterday")
        emu.flush()
        clock.now = now
        users = [emu.customer(number, f"1555100{i:04d}", name=f"User {i}") for i in range(100)]
        for round_ in range(5):
            for user in users:
                user.send_text(f"message {round_} from {user.wa_id}")
        emu.flush()
        deliveries = emu.driver.deliveries
        assert all(d.outcome == "delivered" for d in deliveries)
        assert count(runtime, Message, Message.direction == "in") == 501
        assert count(runtime, Conversation) == 101 and count(runtime, Contact) == 101

        # Replies inside the window go out and come back with statuses.
        conv = conversation_of(runtime, users[0].wa_id)
        r = client.post("/api/v1/messages", headers=admin_headers,
                        json={"conversation_id": conv, "type": "text", "text": {"body": "Thanks, on it!"}})
        assert r.status_code == 202, r.json
        reply_id = r.json["id"]
        worker(runtime).drain()
        assert [s.body["text"]["body"] for s in emu.sent_to(users[0].wa_id)] == ["Thanks, on it!"]
        emu.flush()
        reply = client.get(f"/api/v1/messages/{reply_id}", headers=admin_headers).json
        assert reply["wa_message_id"] and reply["status"] in ("delivered", "read")
        assert reply["pricing"]["billable"] is True and reply["pricing"]["category"] == "service"

        # After the window: free text is refused before anything is sent ...
        late_conv = conversation_of(runtime, late.wa_id)
        r = client.post("/api/v1/messages", headers=admin_headers,
                        json={"conversation_id": late_conv, "type": "text", "text": {"body": "Still there?"}})
        assert r.status_code == 409 and r.json["error"] == "window_closed"
        assert r.json["templates"] == [], "nothing synced yet"
        # ... a template goes out and is billed.
        assert client.post("/api/v1/templates/sync", json={"channel_id": w["channel_id"]},
                           headers=admin_headers).json["templates"] == 1
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": late_conv, "type": "template",
            "template": {"name": "order_update", "language": "en", "body": ["Late", "42"]}})
        assert r.status_code == 202, r.json
        template_id = r.json["id"]
        worker(runtime).drain()
        emu.flush()
        sent = client.get(f"/api/v1/messages/{template_id}", headers=admin_headers).json
        assert sent["status"] in ("delivered", "read")
        assert sent["pricing"]["billable"] is True and sent["pricing"]["category"] == "utility"
        assert Decimal(sent["pricing"]["cost"]) > 0
        assert len(emu.sent) == 2


def test_api_errors_are_classified(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        emu, number = w["emu"], w["number"]
        ana = emu.customer(number, "15557654321", name="Ana")
        ana.send_text("hi")
        emu.flush()
        conv = conversation_of(runtime, "15557654321")

        def send(text):
            r = client.post("/api/v1/messages", headers=admin_headers,
                            json={"conversation_id": conv, "type": "text", "text": {"body": text}})
            assert r.status_code == 202
            return r.json["id"]

        def state(mid):
            with runtime.db.scope() as session:
                m = session.get(Message, mid)
                return m.status, m.error_code, m.attempts

        # Throughput exceeded: back to the queue, sent on a later round.
        emu.fail_next(1, code=130429)
        first = send("one")
        worker(runtime).drain()
        assert state(first)[:2] == ("queued", 130429)
        with runtime.db.scope() as session:
            session.get(Message, first).next_attempt_at = utcnow()
        worker(runtime).drain()
        assert state(first)[0] == "accepted"
        # A message the API refuses for good fails with the code kept.
        emu.fail_next(1, code=131009)
        second = send("two")
        worker(runtime).drain()
        assert state(second)[:2] == ("failed", 131009)
        # A refused token fails the message and marks the channel unhealthy.
        emu.fail_next(1, code=190, status=401)
        third = send("three")
        worker(runtime).drain()
        assert state(third)[:2] == ("failed", 190)
        with runtime.db.scope() as session:
            channel = session.get(Channel, w["channel_id"])
            assert channel.health == "unhealthy" and "access token" in channel.health_message


def test_undeliverable_recipient_fails_through_the_status_webhook(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        emu, number = w["emu"], w["number"]
        emu.add_template("1100000000000001", name="order_update", language="en", category="UTILITY",
                         components=ORDER_UPDATE)
        client.post("/api/v1/templates/sync", json={"channel_id": w["channel_id"]}, headers=admin_headers)
        emu.add_unknown_recipient("15550000001")
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "channel_id": w["channel_id"], "to": "+15550000001", "type": "template",
            "template": {"name": "order_update", "language": "en", "body": ["Jo", "7"]}})
        assert r.status_code == 202
        worker(runtime).drain()
        emu.flush()
        m = client.get(f"/api/v1/messages/{r.json['id']}", headers=admin_headers).json
        assert m["status"] == "failed" and m["error"]["code"] == 131026
        assert m["pricing"] is None or m["pricing"]["billable"] is False


@pytest.mark.parametrize("provider", ["cloud", "360dialog"])
def test_inbound_media_is_downloaded_on_demand(client, runtime, admin_headers, provider):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock, provider=provider) as w:
        emu, number = w["emu"], w["number"]
        ana = emu.customer(number, "15557654321", name="Ana")
        picture = b"\x89PNG\r\n\x1a\n" + b"pixels" * 1000
        ana.send_media("image", picture, mime_type="image/png", caption="broken part")
        emu.flush()
        with runtime.db.scope() as session:
            message = session.scalars(select(Message)).one()
            assert message.text == "broken part"
        r = client.get(f"/api/v1/messages/{message.id}/media", headers=admin_headers)
        assert r.status_code == 200 and r.data == picture and r.mimetype == "image/png"
        # Connectors get a signed link a CRM user can open without an API token.
        from hub.models import Event
        with runtime.db.scope() as session:
            event = session.scalars(select(Event).where(Event.type == "message.received")).one()
        link = event.data["message"]["media"]["download_url"]
        assert link.startswith("http://hub.test/media/")
        path = link.removeprefix("http://hub.test")
        r = client.get(path)
        assert r.status_code == 200 and r.data == picture
        assert client.get(path.replace("signature=", "signature=0")).status_code == 403
        assert client.get(f"/media/{message.id}").status_code == 403
        # Over the size limit: refused, not truncated.
        from hub.platform.runtime import Runtime
        small = Runtime(runtime.config.replace(whatsapp__media_max_bytes=1024), runtime.db, runtime.vault)
        from hub.app import create_app
        limited = create_app(runtime=small).test_client()
        r = limited.get(f"/api/v1/messages/{message.id}/media", headers=admin_headers)
        assert r.status_code == 413 and "limit" in r.json["message"]


def test_scheduled_template_sync_is_asked_by_the_job_and_done_by_a_worker(client, runtime):
    from hub.channels.whatsapp.templates.sync import request_sync
    from hub.models import Template

    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        w["emu"].add_template("1100000000000001", name="order_update", language="en", category="UTILITY",
                              components=ORDER_UPDATE)
        assert request_sync(runtime, utcnow()) == 1
        assert request_sync(runtime, utcnow()) == 0, "already asked"
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Template)) == 0, "the job only asks"
        worker(runtime).drain()
        with runtime.db.scope() as session:
            template = session.scalars(select(Template)).one()
            channel = session.get(Channel, w["channel_id"])
            assert (template.name, template.status) == ("order_update", "APPROVED")
            assert channel.templates_synced_at is not None and channel.templates_sync_requested_at is None
