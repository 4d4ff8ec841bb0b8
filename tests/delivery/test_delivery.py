"""The delivery ledger end to end with the generic webhook connector."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from connectors.webhook import signing
from hub.delivery import ledger
from hub.crm.worker import Worker
from hub.events.outbox import UnknownEventType, emit
from hub.models import Delivery
from tests.support.clock import FakeClock
from tests.support.factories import SECRET, emit_many, webhook_connector
from tests.support.receiver import Receiver, Reply


def deliveries(runtime):
    with runtime.db.scope() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def make_worker(runtime, clock, owner="w1"):
    return Worker(runtime.db, runtime.vault, runtime.config, owner=owner, clock=clock, rng=random.Random(7))


def test_round_trip_signed_and_verified(runtime):
    clock = FakeClock()
    with Receiver() as rx:
        webhook_connector(runtime, rx.url + "/hook")
        ids = emit_many(runtime, 3, now=clock())
        assert make_worker(runtime, clock).drain() == 3
    # Independent events (no conversation) go out in parallel, in any order.
    assert sorted(r.json()["id"] for r in rx.requests) == sorted(ids)
    for req in rx.requests:
        assert req.headers["webhook-id"] == req.json()["id"]
        assert req.headers["Content-Type"] == "application/json"
        assert signing.verify(SECRET, req.headers, req.body, now=int(clock().timestamp()))
        assert not signing.verify(SECRET, req.headers, req.body + b" ", now=int(clock().timestamp()))
    body = next(r.json() for r in rx.requests if r.json()["id"] == ids[0])
    assert body["type"] == "message.received" and body["version"] == 1 and body["data"] == {"n": 0}
    assert all(d.status == "done" and d.attempts == 1 for d in deliveries(runtime))


def test_emit_without_subscribers_writes_only_the_event(runtime):
    with runtime.db.scope() as session:
        emit(session, "message.received", {}, now=FakeClock()())
    assert deliveries(runtime) == []


def test_unknown_event_type_is_refused(runtime):
    with pytest.raises(UnknownEventType):
        with runtime.db.scope() as session:
            emit(session, "message.teleported", {}, now=FakeClock()())


def test_event_type_filter(runtime):
    clock = FakeClock()
    with Receiver() as rx:
        webhook_connector(runtime, rx.url, event_types=["conversation.closed"])
        with runtime.db.scope() as session:
            emit(session, "message.received", {}, now=clock())
            emit(session, "conversation.closed", {}, now=clock())
        make_worker(runtime, clock).drain()
    assert [b["type"] for b in rx.bodies()] == ["conversation.closed"]


def test_emit_rolls_back_with_its_transaction(runtime):
    with Receiver() as rx:
        webhook_connector(runtime, rx.url)
    with pytest.raises(RuntimeError):
        with runtime.db.scope() as session:
            emit(session, "message.received", {}, now=FakeClock()())
            raise RuntimeError("the change failed")
    assert deliveries(runtime) == []


def test_retry_with_backoff_then_success(runtime):
    clock = FakeClock()
    script = lambda req, n: Reply(503) if n <= 2 else Reply(200)  # noqa: E731
    with Receiver(script) as rx:
        webhook_connector(runtime, rx.url)
        emit_many(runtime, 1, now=clock())
        worker = make_worker(runtime, clock)
        assert worker.drain() == 1
        (d,) = deliveries(runtime)
        assert d.status == "pending" and d.attempts == 1 and d.last_error == "HTTP 503"
        first_wait = (d.next_attempt_at - clock()).total_seconds()
        assert 0.5 <= first_wait <= 1.0  # base 1 s with equal jitter
        assert worker.drain() == 0, "not due yet"
        clock.advance(first_wait)
        worker.drain()
        (d,) = deliveries(runtime)
        second_wait = (d.next_attempt_at - clock()).total_seconds()
        assert d.attempts == 2 and 1.0 <= second_wait <= 2.0
        clock.advance(second_wait)
        worker.drain()
    (d,) = deliveries(runtime)
    assert d.status == "done" and d.attempts == 3 and d.last_error is None
    assert len(rx.requests) == 3
    assert len({r.headers["webhook-id"] for r in rx.requests}) == 1, "same id on every retry"


def test_retry_after_is_honoured(runtime):
    clock = FakeClock()
    script = lambda req, n: Reply(429, headers={"Retry-After": "120"}) if n == 1 else Reply(200)  # noqa: E731
    with Receiver(script) as rx:
        webhook_connector(runtime, rx.url)
        emit_many(runtime, 1, now=clock())
        worker = make_worker(runtime, clock)
        worker.drain()
        (d,) = deliveries(runtime)
        assert d.next_attempt_at == clock() + timedelta(seconds=120)
        assert d.last_response["status"] == 429
        clock.advance(119)
        assert worker.drain() == 0
        clock.advance(1)
        assert worker.drain() == 1
    assert deliveries(runtime)[0].status == "done"


def test_client_error_is_dead_at_once_and_replayable(runtime):
    clock = FakeClock()
    script = lambda req, n: Reply(400, body=b'{"error":"bad"}') if n == 1 else Reply(200)  # noqa: E731
    with Receiver(script) as rx:
        webhook_connector(runtime, rx.url)
        emit_many(runtime, 1, now=clock())
        worker = make_worker(runtime, clock)
        worker.drain()
        (d,) = deliveries(runtime)
        assert d.status == "dead" and "HTTP 400" in d.last_error
        assert d.last_response["body"] == '{"error":"bad"}'
        with runtime.db.scope() as session:
            assert ledger.replay(session, now=clock(), ids=[d.id]) == 1
        worker.drain()
    assert deliveries(runtime)[0].status == "done"


def test_dead_letter_after_max_age(database_url, tmp_path):
    from hub.platform.runtime import Runtime
    from tests.conftest import make_config

    runtime = Runtime.from_config(make_config(database_url, tmp_path, delivery__max_age_seconds=300))
    clock = FakeClock()
    with Receiver(lambda req, n: Reply(500)) as rx:
        webhook_connector(runtime, rx.url)
        emit_many(runtime, 1, now=clock())
        worker = make_worker(runtime, clock)
        for _ in range(200):
            worker.drain()
            (d,) = deliveries(runtime)
            if d.status == "dead":
                break
            clock.now = d.next_attempt_at
    assert d.status == "dead"
    assert "gave up after" in d.last_error and "HTTP 500" in d.last_error
    assert d.last_response["status"] == 500
    # The last try happened exactly at the deadline, none after it.
    assert d.last_attempt_at == d.created_at + timedelta(seconds=300)
    tries = len(rx.requests)
    assert tries == d.attempts


def test_timeouts_and_refused_connections_retry(runtime):
    clock = FakeClock()
    with Receiver(lambda req, n: Reply(200, delay=1.5)) as rx:
        webhook_connector(runtime, rx.url)  # timeout_seconds=1
        emit_many(runtime, 1, now=clock())
        make_worker(runtime, clock).drain()
    (d,) = deliveries(runtime)
    assert d.status == "pending" and "timed out" in d.last_error
    with runtime.db.scope() as session:
        session.get(Delivery, d.id).next_attempt_at = clock()
    make_worker(runtime, clock).drain()  # receiver is gone now: connection refused
    (d,) = deliveries(runtime)
    assert d.status == "pending" and "connection failed" in d.last_error


def test_order_kept_per_conversation_while_earlier_retries(runtime):
    clock = FakeClock()
    failing = {"first": True}

    def script(req, n):
        body = req.json()
        if body["data"]["n"] == 0 and failing["first"]:
            failing["first"] = False
            return Reply(503)
        return Reply(200)

    with Receiver(script) as rx:
        webhook_connector(runtime, rx.url)
        # Conversation A: events 0, 2, 4; conversation B: 1, 3, 5.
        emit_many(runtime, 6, now=clock(), key=lambda i: "A" if i % 2 == 0 else "B")
        worker = make_worker(runtime, clock)
        worker.drain()
        got = [b["data"]["n"] for b in rx.bodies()]
        # Wave 1 holds the head of each conversation (sent in parallel), then B goes on alone.
        assert sorted(got[:2]) == [0, 1] and got[2:] == [3, 5], "B flows, A waits behind its head"
        statuses = {d.id: d.status for d in deliveries(runtime)}
        assert list(statuses.values()) == ["pending", "done", "pending", "done", "pending", "done"]
        clock.advance(5)
        worker.drain()
    a_order = [b["data"]["n"] for b in rx.bodies() if b["data"]["n"] % 2 == 0]
    assert a_order == [0, 0, 2, 4]
    assert all(d.status == "done" for d in deliveries(runtime))


def test_dead_head_does_not_block_its_conversation(runtime):
    clock = FakeClock()
    script = lambda req, n: Reply(404) if req.json()["data"]["n"] == 0 else Reply(200)  # noqa: E731
    with Receiver(script) as rx:
        webhook_connector(runtime, rx.url)
        emit_many(runtime, 2, now=clock(), key=lambda i: "A")
        worker = make_worker(runtime, clock)
        worker.drain()
    assert [d.status for d in deliveries(runtime)] == ["dead", "done"]


def test_expired_lease_is_taken_over(runtime):
    clock = FakeClock()
    with Receiver() as rx:
        connector_id = webhook_connector(runtime, rx.url)
        emit_many(runtime, 2, now=clock())
        with runtime.db.scope() as session:  # a worker claims, then dies
            claimed = ledger.claim(session, connector_id, "dead-worker", now=clock(), limit=10, lease_seconds=30)
        assert len(claimed) == 2
        worker = make_worker(runtime, clock)
        assert worker.drain() == 0, "leased rows are not touched while the lease holds"
        clock.advance(31)
        assert worker.drain() == 2
    assert len(rx.requests) == 2
    assert all(d.status == "done" for d in deliveries(runtime))


def test_stale_owner_cannot_overwrite_new_owner(runtime):
    from connectors.base import Outcome

    clock = FakeClock()
    with Receiver() as rx:
        connector_id = webhook_connector(runtime, rx.url)
        emit_many(runtime, 1, now=clock())
        with runtime.db.scope() as session:
            (old,) = ledger.claim(session, connector_id, "old", now=clock(), limit=1, lease_seconds=30)
        clock.advance(31)
        with runtime.db.scope() as session:
            (new,) = ledger.claim(session, connector_id, "new", now=clock(), limit=1, lease_seconds=30)
        with runtime.db.scope() as session:
            ledger.record_outcomes(session, "old", [(old, Outcome.dead("late"))], now=clock(),
                                   policy=ledger.Policy.from_config(runtime.config))
        (d,) = deliveries(runtime)
        assert d.status == "leased" and d.lease_owner == "new"


def test_connector_bug_becomes_a_retry_not_a_crash(runtime):
    from connectors.base import Connector, registry
    from marshmallow import Schema

    class Broken(Connector):
        kind = "broken-test"
        title = "Broken"
        Settings = Schema

        def deliver(self, batch):
            raise KeyError("oops")

    registry.register(Broken)
    try:
        clock = FakeClock()
        with runtime.db.scope() as session:
            from hub.crm.store import create_connector
            create_connector(session, runtime.vault, kind="broken-test", name="b", settings={}, now=clock())
        emit_many(runtime, 2, now=clock())
        make_worker(runtime, clock).drain()
        assert all(d.status == "pending" and "KeyError" in d.last_error for d in deliveries(runtime))
    finally:
        registry.unregister("broken-test")


def test_wait_outcome_postpones_without_dying(runtime):
    from connectors.base import Connector, Outcome, registry
    from marshmallow import Schema

    class Paused(Connector):
        kind = "paused-test"
        title = "Paused"
        Settings = Schema

        def deliver(self, batch):
            return [Outcome.wait("token revoked")] * len(batch)

    registry.register(Paused)
    try:
        clock = FakeClock()
        with runtime.db.scope() as session:
            from hub.crm.store import create_connector
            create_connector(session, runtime.vault, kind="paused-test", name="p", settings={}, now=clock())
        emit_many(runtime, 1, now=clock())
        worker = make_worker(runtime, clock)
        for _ in range(5):
            clock.advance(4000)  # beyond max age (3600 s)
            worker.drain()
        (d,) = deliveries(runtime)
        assert d.status == "pending" and d.attempts == 0 and d.last_error == "token revoked"
    finally:
        registry.unregister("paused-test")


def test_a_taken_over_delivery_says_it_may_have_been_tried(runtime):
    from connectors.base import Connector, Outcome, registry
    from marshmallow import Schema

    seen = []

    class Recorder(Connector):
        kind = "recorder-test"
        title = "Recorder"
        Settings = Schema

        def deliver(self, batch):
            seen.extend(e.attempt for e in batch)
            return [Outcome.done()] * len(batch)

    registry.register(Recorder)
    try:
        clock = FakeClock()
        with runtime.db.scope() as session:
            from hub.crm.store import create_connector
            connector_id = create_connector(session, runtime.vault, kind="recorder-test", name="r", settings={},
                                            now=clock()).id
        emit_many(runtime, 2, now=clock())
        with runtime.db.scope() as session:  # a worker takes one and dies mid-way
            ledger.claim(session, connector_id, "dead-worker", now=clock(), limit=1, lease_seconds=30)
        clock.advance(31)
        make_worker(runtime, clock).drain()
        assert seen == [2, 1]
    finally:
        registry.unregister("recorder-test")
