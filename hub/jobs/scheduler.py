"""The scheduler: APScheduler 3 jobs run by exactly one leader at a time.

Every scheduler process renews a lease in the database every lease/3 seconds; the
holder runs the jobs, the others stand by and take over once the lease expires
(within `scheduler.lease_seconds`). Each job also re-checks leadership before it runs,
so a leader that stalled past its lease does not run jobs beside the new one.
Jobs only enqueue work or do small database chores; workers do the rest.
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from hub.jobs import leases
from hub.platform.db import utcnow
from hub.platform.runtime import worker_id
from hub.jobs.retention import purge
from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[Runtime, datetime], Any]
    trigger: str  # "interval" or "cron"
    trigger_args: dict[str, Any] | Callable[[Any], dict[str, Any]]  # or from the config


_JOBS: dict[str, JobSpec] = {}


def register_job(spec: JobSpec) -> JobSpec:
    _JOBS[spec.id] = spec
    return spec


def registered_jobs() -> list[JobSpec]:
    return list(_JOBS.values())


def _retention(runtime: Runtime, now: datetime) -> None:
    counts = purge(runtime.db, now=now, days=runtime.config.scheduler.retention_days,
                   visit_days=runtime.config.tracking.visits_retention_days)
    if any(counts.values()):
        log.info("retention purged %s", counts)


register_job(JobSpec("retention", _retention, "cron", {"hour": 3, "minute": 17}))


class LeaderScheduler:
    def __init__(self, runtime: Runtime, *, holder: str | None = None,
                 clock: Callable[[], datetime] = utcnow, jobs: list[JobSpec] | None = None):
        self.runtime = runtime
        self.holder = holder or f"{worker_id()}:{uuid.uuid4().hex[:4]}"
        self.clock = clock
        self.ttl = runtime.config.scheduler.lease_seconds
        self.jobs = jobs if jobs is not None else registered_jobs()
        self.leading = False
        self._aps: BackgroundScheduler | None = None

    def _start_jobs(self) -> None:
        self._aps = BackgroundScheduler(timezone="UTC")
        for spec in self.jobs:
            args = spec.trigger_args(self.runtime.config) if callable(spec.trigger_args) else spec.trigger_args
            self._aps.add_job(
                self._guarded(spec), spec.trigger, id=spec.id, name=spec.id,
                coalesce=True, max_instances=1, misfire_grace_time=300, **args,
            )
        self._aps.start()

    def _stop_jobs(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    def _guarded(self, spec: JobSpec) -> Callable[[], None]:
        def run() -> None:
            if not self.leading:
                return
            if not leases.try_acquire(self.runtime.db, LEASE_NAME, self.holder, now=self.clock(), ttl=self.ttl):
                self.leading = False
                return
            try:
                spec.func(self.runtime, self.clock())
            except Exception:
                log.exception("scheduled job %s failed", spec.id)
        return run

    def tick(self) -> bool:
        """Renew or take the lease; start or stop the jobs accordingly."""
        try:
            leader = leases.try_acquire(self.runtime.db, LEASE_NAME, self.holder, now=self.clock(), ttl=self.ttl)
        except Exception:
            log.exception("scheduler could not reach the database; standing down")
            leader = False
        if leader and not self.leading:
            log.info("scheduler %s is now the leader", self.holder)
            self.leading = True
            self._start_jobs()
        elif not leader and self.leading:
            log.warning("scheduler %s lost the lead", self.holder)
            self.leading = False
            self._stop_jobs()
        return self.leading

    def run_job_now(self, job_id: str) -> None:
        spec = next(s for s in self.jobs if s.id == job_id)
        spec.func(self.runtime, self.clock())

    def run(self, stop: threading.Event) -> None:
        log.info("scheduler %s standing by (lease %.0f s)", self.holder, self.ttl)
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(self.ttl / 3)
        finally:
            self._stop_jobs()
            if self.leading:
                leases.release(self.runtime.db, LEASE_NAME, self.holder)
                self.leading = False
