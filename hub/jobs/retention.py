"""Retention: finished deliveries, their events, processed raw webhooks, the update ids
channels applied (Telegram resends an update for a day at most) and (when configured)
tracked-link visits that never started a conversation age out."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select

from connectors.base import registry
from hub.platform.db import Database
from hub.models import ChannelUpdate, CrmLink, Delivery, Event, RawWebhook, Visit

# Idempotency keys of CRM commands (hub.crm.commands) are scratch too.
HUB_SCRATCH_LINKS = frozenset({"command"})

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


def purge(db: Database, *, now: datetime, days: int, visit_days: int = 0) -> dict[str, int]:
    """Dead letters and failed raw webhooks are kept: they wait for a human.
    `visit_days`: unmatched visits older than this go (0 keeps them); a matched visit
    stays, since it is a conversation's lead source."""
    cutoff = now - timedelta(days=days)
    counts = {
        "deliveries": _delete_in_chunks(
            db, Delivery.id, Delivery.status == "done", Delivery.finished_at < cutoff
        ),
        "events": _delete_in_chunks(
            db, Event.id, Event.created_at < cutoff, ~exists().where(Delivery.event_id == Event.id)
        ),
        "raw_webhooks": _delete_in_chunks(
            db, RawWebhook.id, RawWebhook.status == "processed", RawWebhook.received_at < cutoff
        ),
        "scratch_links": _delete_in_chunks(
            db, CrmLink.id, CrmLink.entity_type.in_(sorted(scratch_link_types())), CrmLink.created_at < cutoff
        ),
    }
    with db.scope() as session:  # a few dozen bytes each: one statement
        counts["channel_updates"] = session.execute(
            delete(ChannelUpdate).where(ChannelUpdate.received_at < cutoff)).rowcount
    if visit_days:
        counts["visits"] = _delete_in_chunks(
            db, Visit.id, Visit.matched_at.is_(None), Visit.visited_at < now - timedelta(days=visit_days))
    return counts


def scratch_link_types() -> frozenset[str]:
    types = set(HUB_SCRATCH_LINKS)
    for cls in registry.kinds().values():
        types |= cls.scratch_links
    return frozenset(types)
