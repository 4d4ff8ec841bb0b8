"""Small builders for test data."""
from __future__ import annotations

from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.events.outbox import emit
from hub.platform.runtime import Runtime

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def webhook_connector(runtime: Runtime, url: str, *, name: str = "receiver", now=None, **kwargs) -> int:
    with runtime.db.scope() as session:
        record = create_connector(
            session, runtime.vault, kind="webhook", name=name,
            settings={"url": url, "secret": SECRET, "timeout_seconds": 1}, now=now or utcnow(), **kwargs,
        )
        return record.id


def emit_many(runtime: Runtime, count: int, *, now=None, type_="message.received", key=lambda i: None) -> list[str]:
    ids = []
    with runtime.db.scope() as session:
        for i in range(count):
            event = emit(session, type_, {"n": i}, now=now or utcnow(), ordering_key=key(i))
            ids.append(event.id)
    return ids
