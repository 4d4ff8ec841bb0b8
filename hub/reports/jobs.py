"""Scheduled reports as a scheduler job (also run once when the scheduler starts, so a
report whose time passed while the hub was down goes out then, once)."""
from __future__ import annotations

from datetime import datetime

from hub.platform.db import utcnow
from hub.reports import facts
from hub.reports.runs import run_due
from hub.platform.runtime import Runtime
from hub.jobs.scheduler import JobSpec, register_job


def scheduled_reports(runtime: Runtime, now: datetime) -> list[int]:
    return run_due(runtime, now)


# next_run_time: at once when this scheduler takes the lead, then every check_seconds.
register_job(JobSpec("scheduled_reports", scheduled_reports, "interval",
                     lambda config: {"seconds": config.reports.check_seconds, "next_run_time": utcnow()}))


def follow_facts(runtime: Runtime, now: datetime) -> int:
    """Keep report_facts up to date with the events (hub.reports.facts)."""
    with runtime.db.scope() as session:
        return facts.follow(session, now=now)


register_job(JobSpec("report_facts", follow_facts, "interval",
                     lambda config: {"seconds": config.reports.check_seconds, "next_run_time": utcnow()}))
