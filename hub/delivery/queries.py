"""Read side of the ledger for the CLI, the API and the admin."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import ConnectorRecord, Delivery, Event


def list_deliveries(
    session: Session,
    *,
    status: str | None = None,
    connector_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    query = (
        select(Delivery, Event.type, ConnectorRecord.name)
        .join(Event, Event.id == Delivery.event_id)
        .join(ConnectorRecord, ConnectorRecord.id == Delivery.connector_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Delivery.status == status)
    if connector_id:
        query = query.where(Delivery.connector_id == connector_id)
    if before_id:
        query = query.where(Delivery.id < before_id)
    return [summary(d, event_type, name) for d, event_type, name in session.execute(query)]


def _done_note(d: Delivery) -> tuple[list[str] | None, str | None]:
    """What a done delivery did, where its connector said so in the response it kept:
    what it sent (an analytics destination's goals) or why it sent nothing."""
    response = d.last_response if d.status == "done" and isinstance(d.last_response, dict) else {}
    sent = response.get("sent")
    skipped = response.get("skipped")
    return ([str(s) for s in sent] if isinstance(sent, list) and sent else None,
            str(skipped) if isinstance(skipped, str) and skipped else None)


def summary(d: Delivery, event_type: str, connector_name: str) -> dict[str, Any]:
    sent, skipped = _done_note(d)
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_type": event_type,
        "connector_id": d.connector_id,
        "connector": connector_name,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "created_at": d.created_at,
        "last_attempt_at": d.last_attempt_at,
        "finished_at": d.finished_at,
        "last_error": d.last_error,
        "sent": sent,
        "skipped": skipped,
    }


def show_delivery(session: Session, delivery_id: int) -> dict[str, Any] | None:
    row = session.execute(
        select(Delivery, Event, ConnectorRecord.name)
        .join(Event, Event.id == Delivery.event_id)
        .join(ConnectorRecord, ConnectorRecord.id == Delivery.connector_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if row is None:
        return None
    d, event, name = row
    return {
        **summary(d, event.type, name),
        "ordering_key": d.ordering_key,
        "lease_owner": d.lease_owner,
        "lease_expires_at": d.lease_expires_at,
        "last_response": d.last_response,
        "event": {"id": event.id, "type": event.type, "version": event.version,
                  "occurred_at": event.occurred_at, "data": event.data},
    }


def counts(session: Session, *, connector_id: int | None = None) -> dict[str, int]:
    query = select(Delivery.status, func.count()).group_by(Delivery.status)
    if connector_id:
        query = query.where(Delivery.connector_id == connector_id)
    result = {s: 0 for s in ("pending", "leased", "done", "dead")}
    result.update(dict(session.execute(query).all()))
    return result


def oldest_waiting(session: Session, *, connector_id: int | None = None) -> datetime | None:
    query = select(func.min(Delivery.created_at)).where(Delivery.status.in_(("pending", "leased")))
    if connector_id:
        query = query.where(Delivery.connector_id == connector_id)
    return session.scalar(query)
