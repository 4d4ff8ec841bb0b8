"""Retention: finished deliveries, their events and processed raw webhooks age out."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select

from hub.db import Database
from hub.models import Delivery, Event, RawWebhook

CHUNK = 5000


def _delete_in_chunks(db: Database, id_column: Any, *conditions: Any) -> int:
    """Small transactions, so a big purge never holds the write lock for long."""
    total = 0
    while True:
        with db.scope() as session:
            ids = list(session.scalars(select(id_column).where(*conditions).limit(CHUNK)))
            if ids:
                session.execute(delete(id_column.class_).where(id_column.in_(ids)))
        total += len(ids)
        if len(ids) < CHUNK:
            return total


def purge(db: Database, *, now: datetime, days: int) -> dict[str, int]:
    """Dead letters and failed raw webhooks are kept: they wait for a human."""
    cutoff = now - timedelta(days=days)
    return {
        "deliveries": _delete_in_chunks(
            db, Delivery.id, Delivery.status == "done", Delivery.finished_at < cutoff
        ),
        "events": _delete_in_chunks(
            db, Event.id, Event.created_at < cutoff, ~exists().where(Delivery.event_id == Event.id)
        ),
        "raw_webhooks": _delete_in_chunks(
            db, RawWebhook.id, RawWebhook.status == "processed", RawWebhook.received_at < cutoff
        ),
    }
