"""Real worker processes: exactly-once with two workers, nothing lost after SIGKILL."""
from __future__ import annotations

import collections
import signal

import pytest
from sqlalchemy import func, select

from hub.models import Delivery
from tests.conftest import BACKEND
from tests.support.factories import emit_many, webhook_connector
from tests.support.processes import hub_env, start_hub, stop, wait_for
from tests.support.receiver import Receiver, Reply

pytestmark = pytest.mark.slow


def status_counts(runtime) -> dict[str, int]:
    with runtime.db.scope() as session:
        return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


@pytest.mark.skipif(BACKEND != "postgres", reason="several workers need PostgreSQL (SQLite has one writer)")
def test_two_worker_processes_deliver_each_event_exactly_once(runtime, database_url, tmp_path):
    with Receiver() as rx:
        webhook_connector(runtime, rx.url)
        ids = emit_many(runtime, 2000, key=lambda i: f"conversation:{i % 150}")
        env = hub_env(database_url, tmp_path, worker__batch_size="50", worker__poll_seconds="0.05")
        procs = [start_hub(["worker"], env, tmp_path / f"w{i}.log") for i in range(2)]
        try:
            wait_for(lambda: status_counts(runtime).get("done", 0) == 2000, 120, "2000 deliveries done")
        finally:
            for p in procs:
                stop(p)
    seen = collections.Counter(r.headers["webhook-id"] for r in rx.requests)
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1, "an event was delivered twice"
    assert status_counts(runtime) == {"done": 2000}


def test_sigkill_mid_batch_loses_nothing(runtime, database_url, tmp_path):
    with Receiver(lambda req, n: Reply(200, delay=0.01)) as rx:
        webhook_connector(runtime, rx.url)
        ids = emit_many(runtime, 200, key=lambda i: f"conversation:{i % 20}")
        env = hub_env(database_url, tmp_path, worker__batch_size="50", worker__lease_seconds="2",
                      worker__poll_seconds="0.05")
        first = start_hub(["worker"], env, tmp_path / "first.log")
        try:
            wait_for(lambda: len(rx.requests) >= 10, 60, "the first worker to start delivering")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            stop(first)
        with runtime.db.scope() as session:
            leased = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "leased"))
        assert leased > 0, "the kill should have left leased work behind"
        second = start_hub(["worker"], env, tmp_path / "second.log")
        try:
            wait_for(lambda: status_counts(runtime).get("done", 0) == 200, 120, "all deliveries done")
        finally:
            stop(second)
    seen = {r.headers["webhook-id"] for r in rx.requests}
    assert seen == set(ids), "every event reached the receiver"
    assert status_counts(runtime) == {"done": 200}
