"""Scheduled pulls: connectors that implement pull(since) read what changed in their CRM
and hand back commands, as a webhook would. It catches what the CRM's own webhooks did
not deliver (Bitrix24 does not repeat an event the hub missed); the connectors' own
keys make a change seen both ways act once.

The scheduler job only asks (a flag per connector); a worker claims one request per
round, pulls from a little before where the last pull ended, carries the commands out
in one transaction and moves `pulled_until` on only when all of that worked.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update

from connectors.base import registry
from hub.crm.commands import execute
from hub.crm.store import build_connector
from hub.platform.db import claim_request
from hub.models import ConnectorRecord
from hub.jobs.scheduler import JobSpec, register_job

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)

# Each pull re-reads this much before the last one's end: clocks and commits differ.
OVERLAP = timedelta(minutes=5)
# A connector's first pull looks this far back.
FIRST_LOOKBACK = timedelta(hours=1)


def pulling_kinds() -> set[str]:
    return {kind for kind, cls in registry.kinds().items() if callable(getattr(cls, "pull", None))}


def _keep_updated_at():
    # A pull request is not a configuration change: workers must not rebuild connectors.
    return ConnectorRecord.updated_at


def request_pulls(runtime: "Runtime", now: datetime) -> int:
    """The scheduled job: ask for one pull per enabled connector that can pull."""
    kinds = pulling_kinds()
    if not kinds:
        return 0
    with runtime.db.scope() as session:
        return session.execute(
            update(ConnectorRecord)
            .where(ConnectorRecord.enabled.is_(True), ConnectorRecord.kind.in_(sorted(kinds)),
                   ConnectorRecord.pull_requested_at.is_(None))
            .values(pull_requested_at=now, updated_at=_keep_updated_at())
            .execution_options(synchronize_session=False)
        ).rowcount


class ConnectorPuller:
    """A worker source: takes one requested pull per round and runs it."""

    def __init__(self, runtime: "Runtime", *, clock=None):
        from hub.platform.db import utcnow

        self.runtime = runtime
        self.clock = clock or utcnow

    def _claim(self) -> ConnectorRecord | None:
        with self.runtime.db.scope() as session:
            record = claim_request(session, ConnectorRecord, ConnectorRecord.pull_requested_at,
                                   updated_at=_keep_updated_at())
            if record is not None:
                session.expunge(record)
            return record

    def run_once(self) -> int:
        record = self._claim()
        if record is None:
            return 0
        started = self.clock()
        since = (record.pulled_until - OVERLAP) if record.pulled_until else started - FIRST_LOOKBACK
        try:
            connector = build_connector(self.runtime.db, self.runtime.vault, record, clock=self.clock,
                                        http_timeout=self.runtime.config.delivery.http_timeout_seconds,
                                        base_url=self.runtime.config.base_url)
            commands = connector.pull(since) if record.enabled else []
            with self.runtime.db.scope() as session:
                results = execute(session, commands, now=started, connector_id=record.id)
                session.execute(update(ConnectorRecord).where(ConnectorRecord.id == record.id)
                                .values(pulled_until=started, updated_at=_keep_updated_at())
                                .execution_options(synchronize_session=False))
        except Exception as exc:  # the next request tries again from the same point
            log.warning("pull of connector %s failed: %s", record.name, exc)
            return 1
        if results:
            log.info("pull of connector %s: %d command(s), %d refused", record.name, len(results),
                     sum(not r.ok for r in results))
        return 1


register_job(JobSpec("connector_pulls", request_pulls, "interval",
                     lambda config: {"minutes": config.scheduler.pull_minutes}))
