"""Domain events and the delivery ledger (one row per event and subscriber)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId, created_at

DELIVERY_STATUSES = ("pending", "leased", "done", "dead")
UNFINISHED = "status IN ('pending', 'leased')"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_type_occurred", "type", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUID, stable
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Events sharing a key are delivered in order (a conversation's events).
    ordering_key: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = created_at()


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'leased', 'done', 'dead')", name="status"),
        # The queue: unfinished rows only, so claims never wade through done history.
        Index("ix_deliveries_queue", "connector_id", "id",
              sqlite_where=text(UNFINISHED), postgresql_where=text(UNFINISHED)),
        # "Is an earlier event of this conversation still unfinished?"
        Index("ix_deliveries_unfinished_key", "connector_id", "ordering_key", "id",
              sqlite_where=text(UNFINISHED), postgresql_where=text(UNFINISHED)),
        # The delivery log: per connector and status, newest first.
        Index("ix_deliveries_log", "connector_id", "status", "id"),
        Index("ix_deliveries_event", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    connector_id: Mapped[int] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    ordering_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # What the subscriber answered last time (status, headers, body excerpt; redacted).
    last_response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
