"""Fixtures for the amoCRM connector: the emulator, a configured connector, draining."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from connectors.amocrm import benchkit
from connectors.amocrm.emulator import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Served, serve
from hub.crm.store import build_connector, create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Delivery


@pytest.fixture(autouse=True)
def _forget_reported_health():
    """Connector ids repeat across tests (a fresh database each time)."""
    import connectors.amocrm as amocrm

    amocrm._REPORTED.clear()
    yield
    amocrm._REPORTED.clear()


@pytest.fixture
def amo() -> Iterator[Served]:
    with serve() as server:
        yield server


def long_lived_settings(amo: Served, **overrides: Any) -> dict[str, Any]:
    return {**benchkit.connector_settings(amo.base_url), "timeout_seconds": 2, **overrides}


def oauth_settings(amo: Served, **overrides: Any) -> dict[str, Any]:
    settings = long_lived_settings(amo, **overrides)
    settings.pop("long_lived_token")
    settings.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI,
                    authorization_code=amo.emulator.oauth.issue_code())
    settings.update(overrides)
    return settings


def add_connector(runtime, settings: dict[str, Any], *, name: str = "amo", **kwargs: Any) -> int:
    with runtime.db.scope() as session:
        return create_connector(session, runtime.vault, kind="amocrm", name=name, settings=settings,
                                now=utcnow(), **kwargs).id


def instance(runtime, connector_id: int, clock=utcnow):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    return build_connector(runtime.db, runtime.vault, record, clock=clock, http_timeout=5)


def statuses(runtime) -> dict[str, int]:
    with runtime.db.scope() as session:
        rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    return {status: n for status, n in rows}


def drain(runtime, *, worker: Worker | None = None, deadline: float = 120.0) -> dict[str, int]:
    """Deliver until nothing is pending (sleeping to the next retry), or fail the test."""
    worker = worker or Worker(runtime.db, runtime.vault, runtime.config)
    stop_at = time.monotonic() + deadline
    while True:
        worker.drain()
        with runtime.db.scope() as session:
            pending = session.scalar(select(func.min(Delivery.next_attempt_at)).where(
                Delivery.status.in_(("pending", "leased"))))
            leased = session.scalar(select(func.min(Delivery.lease_expires_at)).where(
                Delivery.status == "leased"))
        if pending is None and leased is None:
            return statuses(runtime)
        if time.monotonic() > stop_at:
            raise AssertionError(f"deliveries still pending after {deadline} s: {statuses(runtime)}")
        nxt = min(t for t in (pending, leased) if t is not None)
        time.sleep(min(1.0, max(0.02, (nxt - utcnow()).total_seconds())))


def dead_errors(runtime) -> list[str]:
    with runtime.db.scope() as session:
        return list(session.scalars(select(Delivery.last_error).where(Delivery.status == "dead")))


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    stop = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > stop:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


__all__ = ["add_connector", "drain", "instance", "long_lived_settings", "oauth_settings", "statuses",
           "dead_errors", "wait_for", "timedelta"]


@pytest.fixture
def config(database_url, tmp_path):
    """Quick retries: chaos tests go through many backoff rounds."""
    from tests.conftest import make_config

    return make_config(database_url, tmp_path, delivery__backoff_base_seconds=0.1,
                       delivery__backoff_max_seconds=1.0)
