"""The routing sweep as a scheduler job: presence timeouts and the queue pickup that
no single request triggers (a team's opening hour, a sticky wait running out)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from hub.routing.hooks import sweep
from hub.platform.runtime import Runtime
from hub.jobs.scheduler import JobSpec, register_job

log = logging.getLogger(__name__)


def routing_sweep(runtime: Runtime, now: datetime) -> dict[str, int]:
    with runtime.db.scope() as session:
        counts = sweep(session, now=now,
                       presence_timeout=timedelta(minutes=runtime.config.routing.presence_timeout_minutes))
    if any(counts.values()):
        log.info("routing sweep: %(offline)d operator(s) went offline, %(assigned)d queued chat(s) assigned, "
                 "%(sla_warnings)d SLA warning(s), %(sla_breaches)d breach(es)", counts)
    return counts


register_job(JobSpec("routing_sweep", routing_sweep, "interval",
                     lambda config: {"seconds": config.routing.sweep_seconds}))
