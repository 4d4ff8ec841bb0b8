"""Domain events and emit(): the transactional outbox.

emit() writes the event and one delivery row per subscribed connector in the caller's
transaction, so an event exists if and only if the change that caused it committed.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connectors.base import registry
from hub.models import ConnectorRecord, Delivery, Event

EVENT_TYPES = (
    "message.received",
    "message.sent",
    "message.status",
    "conversation.started",
    "conversation.assigned",
    "conversation.closed",
    "lead.attributed",
    "contact.opted_out",
    "template.status_changed",
    "channel.quality_changed",
    "report.ready",
)

EVENT_VERSION = 1


class UnknownEventType(ValueError):
    pass


def subscribes(kind: str, event_types: list[str] | None, type_: str) -> bool:
    """Does a connector of `kind` with this filter receive events of `type_`?"""
    cls = registry.find(kind)
    handles = cls.handles if cls is not None else None
    if handles is not None and type_ not in handles:
        return False
    return event_types is None or type_ in event_types


def _subscribers(session: Session) -> list[tuple[int, str, list[str] | None]]:
    """Enabled connectors, read once per transaction (a webhook often emits three events)."""
    cached = session.info.get("hub.subscribers")
    if cached is None:
        with session.no_autoflush:  # pending rows are not read here; flush once, at commit
            cached = session.execute(
                select(ConnectorRecord.id, ConnectorRecord.kind, ConnectorRecord.event_types)
                .where(ConnectorRecord.enabled.is_(True))
            ).all()
        session.info["hub.subscribers"] = cached
    return cached


def emit(
    session: Session,
    type_: str,
    data: dict[str, Any],
    *,
    now: datetime,
    ordering_key: str | None = None,
) -> Event:
    """Write the event and its deliveries now, in the caller's transaction.

    Plain INSERTs rather than ORM objects: emit() is on every webhook's hot path, and
    the rows are never changed in the same transaction. Returns the event (not attached
    to the session)."""
    if type_ not in EVENT_TYPES:
        raise UnknownEventType(f"unknown event type {type_!r}")
    row = {"id": str(uuid.uuid4()), "type": type_, "version": EVENT_VERSION, "occurred_at": now,
           "ordering_key": ordering_key, "data": data, "created_at": now}
    session.execute(insert(Event.__table__), row)
    deliveries = [
        {"event_id": row["id"], "connector_id": connector_id, "ordering_key": ordering_key, "status": "pending",
         "attempts": 0, "next_attempt_at": now, "created_at": now}
        for connector_id, kind, event_types in _subscribers(session)
        if subscribes(kind, event_types, type_)
    ]
    if deliveries:
        session.execute(insert(Delivery.__table__), deliveries)
    return Event(**row)
