"""Scheduler leadership: one leader at a time, a standby takes over when it dies."""
from __future__ import annotations

import signal
import time

import pytest

from hub.jobs import leases
from hub.platform.db import utcnow
from hub.models import Lease
from hub.jobs.scheduler import LEASE_NAME, JobSpec, LeaderScheduler
from tests.support.clock import FakeClock
from tests.support.processes import hub_env, start_hub, stop, wait_for


def test_lease_has_one_holder_until_it_expires(runtime):
    clock = FakeClock()
    assert leases.try_acquire(runtime.db, "x", "a", now=clock(), ttl=30)
    assert not leases.try_acquire(runtime.db, "x", "b", now=clock(), ttl=30)
    clock.advance(20)
    assert leases.try_acquire(runtime.db, "x", "a", now=clock(), ttl=30), "renewal"
    clock.advance(29)
    assert not leases.try_acquire(runtime.db, "x", "b", now=clock(), ttl=30)
    clock.advance(2)
    assert leases.try_acquire(runtime.db, "x", "b", now=clock(), ttl=30), "expired: taken over"
    assert not leases.try_acquire(runtime.db, "x", "a", now=clock(), ttl=30)


def test_standby_takes_over_and_only_the_leader_runs_jobs(runtime):
    clock = FakeClock()
    runs: list[str] = []
    a = LeaderScheduler(runtime, holder="a", clock=clock, jobs=[])
    b = LeaderScheduler(runtime, holder="b", clock=clock, jobs=[])
    try:
        assert a.tick() is True
        assert b.tick() is False
        # A job guard refuses to run on a scheduler that is not the leader.
        for s in (a, b):
            s.jobs = [JobSpec("probe", lambda rt, now, s=s: runs.append(s.holder), "interval", {"seconds": 3600})]
            s._guarded(s.jobs[0])()
        assert runs == ["a"]
        clock.advance(runtime.config.scheduler.lease_seconds + 0.1)  # a stopped renewing (died)
        assert b.tick() is True
        assert a.tick() is False, "the old leader stands down"
        runs.clear()
        for s in (a, b):
            s._guarded(s.jobs[0])()
        assert runs == ["b"]
    finally:
        a._stop_jobs()
        b._stop_jobs()


def test_retention_job_purges_old_finished_work(runtime):
    from datetime import timedelta

    from hub.events.outbox import emit
    from hub.models import Delivery, Event
    from hub.jobs.retention import purge
    from sqlalchemy import func, select
    from tests.support.factories import webhook_connector

    clock = FakeClock()
    webhook_connector(runtime, "http://127.0.0.1:1/")
    with runtime.db.scope() as session:
        old = emit(session, "message.received", {}, now=clock() - timedelta(days=40))
        kept = emit(session, "message.received", {}, now=clock())
    with runtime.db.scope() as session:
        for d in session.scalars(select(Delivery)):
            d.status, d.finished_at = "done", d.created_at
    from hub.crm.links import DbLinkStore

    links = DbLinkStore(runtime.db, 1)
    links.put("contact", "1", "contact", "c-1")
    links.put("command", "evt-1", "command", "done")
    with runtime.db.scope() as session:
        from hub.models import CrmLink
        for link in session.scalars(select(CrmLink)):
            link.created_at = clock() - timedelta(days=40)
    counts = purge(runtime.db, now=clock(), days=30)
    assert counts == {"deliveries": 1, "events": 1, "raw_webhooks": 0, "scratch_links": 1, "channel_updates": 0}
    assert links.get("contact", "1") == "c-1", "real links are kept"
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1
        assert session.get(Event, kept.id) is not None and session.get(Event, old.id) is None


def test_retention_deletes_old_unmatched_visits_only_when_configured(runtime):
    from datetime import timedelta

    from hub.models import Visit
    from hub.jobs.retention import purge
    from sqlalchemy import select
    from tests.support.tracking import make_link
    from tests.support.whatsapp import make_channel

    now = FakeClock()()
    link_id = make_link(runtime, make_channel(runtime)[0])
    with runtime.db.scope() as session:
        for code, age, matched in (("OLD1", 100, False), ("OLD2", 100, True), ("NEW1", 10, False)):
            session.add(Visit(link_id=link_id, code=code, live_code=None if matched else code,
                              visited_at=now - timedelta(days=age),
                              matched_at=now - timedelta(days=age) if matched else None))
    assert "visits" not in purge(runtime.db, now=now, days=30)
    assert purge(runtime.db, now=now, days=30, visit_days=90)["visits"] == 1
    with runtime.db.scope() as session:
        assert sorted(session.scalars(select(Visit.code))) == ["NEW1", "OLD2"]


@pytest.mark.slow
def test_scheduler_processes_fail_over_after_sigkill(runtime, database_url, tmp_path):
    env = hub_env(database_url, tmp_path, scheduler__lease_seconds="1.5")

    def holder():
        with runtime.db.scope() as session:
            lease = session.get(Lease, LEASE_NAME)
            return lease.holder if lease and lease.expires_at > utcnow() else None

    first = start_hub(["scheduler"], env, tmp_path / "s1.log")
    second = None
    try:
        wait_for(lambda: holder() is not None, 30, "a leader")
        leader = holder()
        second = start_hub(["scheduler"], env, tmp_path / "s2.log")
        time.sleep(1.5)
        assert holder() == leader, "the standby does not steal a live lease"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: holder() not in (None, leader), 30, "the standby to lead")
        assert time.monotonic() - killed_at < 60
    finally:
        stop(first)
        if second:
            stop(second)
