""""Test connection": run a connector's check() outside any transaction, record health."""
from __future__ import annotations

import logging
from datetime import datetime

from connectors.base import CheckResult
from hub.crm.store import build_connector, set_health
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)


def run_check(runtime: Runtime, connector_id: int, *, now: datetime) -> CheckResult:
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        if record is None:
            raise LookupError(f"no connector with id {connector_id}")
        session.expunge(record)
    try:
        connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow,
                                    http_timeout=runtime.config.delivery.http_timeout_seconds,
                                    base_url=runtime.config.base_url)
        result = connector.check()
    except Exception as exc:  # a check must report, never crash the page
        log.exception("check of connector %s failed", record.name)
        result = CheckResult(False, f"check failed: {type(exc).__name__}: {exc}")
    set_health(runtime.db, connector_id, result.ok, result.message, now=now)
    return result
