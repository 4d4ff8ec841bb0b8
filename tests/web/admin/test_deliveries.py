"""The delivery log in the admin: filters, counts and queue age, one delivery's event,
response and error (redacted), replaying dead letters."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Delivery
from tests.support.admin import post, signed_in
from tests.support.factories import SECRET, emit_many, webhook_connector
from tests.support.receiver import Receiver, Reply


def statuses(runtime) -> list[str]:
    with runtime.db.scope() as s:
        return list(s.scalars(select(Delivery.status).order_by(Delivery.id)))


def deliver(runtime) -> None:
    Worker(runtime.db, runtime.vault, runtime.config).drain()


def dead_letters(runtime, receiver, count=3):
    """Events the receiver refused (400 echoing the secret back): dead at once."""
    connector = webhook_connector(runtime, receiver.url)
    emit_many(runtime, count, key=lambda i: f"conversation:{i}")
    deliver(runtime)
    return connector


def refusing(req, n):
    return Reply(400, body=('{"error":"bad event","echo":"' + SECRET + '"}').encode())


def test_log_lists_filters_and_counts(app, runtime):
    viewer = signed_in(app, runtime, "viewer")
    with Receiver(refusing) as receiver:
        connector = dead_letters(runtime, receiver, 2)
    other = webhook_connector(runtime, "http://127.0.0.1:9/", name="later")
    with runtime.db.scope() as s:  # one event waiting for the second connector only
        from hub.events.outbox import emit
        emit(s, "message.received", {"n": 9}, now=utcnow() - timedelta(minutes=10))
        s.execute(Delivery.__table__.delete().where(Delivery.connector_id == connector, Delivery.status == "pending"))
    page = viewer.get(f"/admin/deliveries?connector_id={connector}").get_data(as_text=True)
    assert "Delivery log" in page and page.count('class="badge bad">dead</span>') == 2
    assert "HTTP 400: the receiver refused the event" in page
    waiting = viewer.get(f"/admin/deliveries?connector_id={other}").get_data(as_text=True)
    assert "queue age" in waiting and "10 minutes" in waiting
    only_dead = viewer.get("/admin/deliveries?status=dead").get_data(as_text=True)
    assert only_dead.count('class="badge bad">dead</span>') == 2 and 'class="badge warn">pending' not in only_dead
    assert viewer.get("/admin/deliveries?connector_id=999").status_code == 404
    # viewers read the log but get no replay buttons
    assert "Replay" not in page


def test_one_delivery_shows_event_response_and_error_redacted(app, runtime):
    admin = signed_in(app, runtime, "admin")
    with Receiver(refusing) as receiver:
        dead_letters(runtime, receiver, 1)
    with runtime.db.scope() as s:
        delivery_id = s.scalar(select(Delivery.id))
    page = admin.get(f"/admin/deliveries/{delivery_id}").get_data(as_text=True)
    assert "Event sent" in page and "message.received" in page and "Last response" in page
    assert "bad event" in page and "[redacted]" in page and SECRET not in page
    assert "HTTP 400" in page
    fragment = admin.get(f"/admin/deliveries/{delivery_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Last response" in fragment


def test_replay_one_and_all_dead_letters(app, runtime):
    admin = signed_in(app, runtime, "admin")
    with Receiver(refusing) as receiver:
        connector = dead_letters(runtime, receiver, 3)
    assert statuses(runtime) == ["dead", "dead", "dead"]
    with runtime.db.scope() as s:
        first = s.scalar(select(Delivery.id).order_by(Delivery.id))
    r = post(admin, f"/admin/deliveries/{first}/replay", {"back": f"/admin/deliveries?connector_id={connector}"},
             page="/admin/")
    assert r.headers["Location"] == f"/admin/deliveries?connector_id={connector}"
    assert statuses(runtime) == ["pending", "dead", "dead"]
    assert "back in the queue" in admin.get(r.headers["Location"]).get_data(as_text=True)
    again = post(admin, f"/admin/deliveries/{first}/replay", {}, page="/admin/")
    assert "not a dead letter" in admin.get(again.headers["Location"]).get_data(as_text=True)
    r = post(admin, "/admin/deliveries/replay", {"connector_id": str(connector)}, page="/admin/")
    assert "2 dead letters are back in the queue." in admin.get(r.headers["Location"]).get_data(as_text=True)
    assert statuses(runtime) == ["pending", "pending", "pending"]
    with Receiver() as fixed:
        with runtime.db.scope() as s:
            from hub.models import ConnectorRecord
            s.get(ConnectorRecord, connector).settings = {"url": fixed.url, "timeout_seconds": 1}
        deliver(runtime)
        assert len(fixed.requests) == 3
    assert statuses(runtime) == ["done", "done", "done"]


def test_replay_needs_csrf_and_the_admin_role(app, runtime):
    with Receiver(refusing) as receiver:
        dead_letters(runtime, receiver, 1)
    with runtime.db.scope() as s:
        delivery_id = s.scalar(select(Delivery.id))
    admin = signed_in(app, runtime, "admin")
    assert admin.post(f"/admin/deliveries/{delivery_id}/replay").status_code == 400
    assert admin.post("/admin/deliveries/replay").status_code == 400
    for role in ("operator", "viewer"):
        client = signed_in(app, runtime, role)
        assert post(client, f"/admin/deliveries/{delivery_id}/replay", {}, page="/admin/").status_code == 403
        assert post(client, "/admin/deliveries/replay", {}, page="/admin/").status_code == 403
    assert statuses(runtime) == ["dead"]


def test_unsafe_back_links_are_ignored(app, runtime):
    with Receiver(refusing) as receiver:
        dead_letters(runtime, receiver, 1)
    with runtime.db.scope() as s:
        delivery_id = s.scalar(select(Delivery.id))
    admin = signed_in(app, runtime, "admin")
    r = post(admin, f"/admin/deliveries/{delivery_id}/replay", {"back": "https://evil.example/"}, page="/admin/")
    assert r.headers["Location"] == f"/admin/deliveries/{delivery_id}"
