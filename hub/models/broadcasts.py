"""Broadcasts: consent per contact and subscription, audiences, broadcasts and their
recipients (hub.broadcasts)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId, created_at, updated_at

SUBSCRIPTIONS = ("marketing", "utility")
BROADCAST_STATUSES = ("draft", "scheduled", "sending", "paused", "completed", "cancelled")


class Consent(Base):
    """The latest word of a contact on one subscription type, with where it came from
    (keyword, whatsapp_preference, csv, api, admin) and when."""

    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("contact_id", "subscription"),
        CheckConstraint("subscription IN ('marketing', 'utility')", name="subscription"),
        CheckConstraint("status IN ('opted_in', 'opted_out')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    subscription: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Audience(Base):
    """Who a broadcast goes to: a segment (a filter over contacts, evaluated when the
    broadcast is made) or an uploaded CSV (its accepted rows and the refusal report)."""

    __tablename__ = "audiences"
    __table_args__ = (CheckConstraint("kind IN ('segment', 'csv')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    segment: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # CSV: [{"phone": "+7...", "variables": {...}}] and [{"row": 3, "phone": "...", "reason": ...}]
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    refused: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')",
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    audience_id: Mapped[int | None] = mapped_column(ForeignKey("audiences.id", ondelete="SET NULL"))
    template_name: Mapped[str] = mapped_column(String(512))
    template_language: Mapped[str] = mapped_column(String(16))
    # The consent it needs: "marketing" or "utility" (the template's category when made).
    subscription: Mapped[str] = mapped_column(String(16), default="marketing")
    # Body parameters in order: {"column": "first_name"} | {"contact": "name"} | {"value": "..."}
    variables: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    header: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    buttons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # Schedule: start at, in a time zone, on allowed ISO weekdays (1 = Monday), in a daily window.
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    allowed_days: Mapped[list[int]] = mapped_column(JSONType, default=lambda: [1, 2, 3, 4, 5, 6, 7])
    window_start: Mapped[str] = mapped_column(String(5), default="00:00")
    window_end: Mapped[str] = mapped_column(String(5), default="24:00")
    # Auto-pause when more than failure_threshold of the last failure_window outcomes failed.
    failure_threshold: Mapped[float] = mapped_column(default=0.2)
    failure_window: Mapped[int] = mapped_column(default=50)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_by: Mapped[str | None] = mapped_column(String(16))  # quality | template | failures | user
    # The reason as a code and its parameters (hub.broadcasts.pauses), for the admin's languages.
    paused_cause: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


RECIPIENT_STATUSES = ("pending", "queued", "sent", "delivered", "read", "replied", "failed", "skipped")


class BroadcastRecipient(Base):
    """One person of a broadcast. message_id is set in the transaction that queues the
    message, and unique: a recipient is queued once, whatever happens to workers."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "phone"),
        Index("ix_broadcast_recipients_status", "broadcast_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id", ondelete="SET NULL"),
                                                   unique=True)
    error_code: Mapped[int | None] = mapped_column()
    # The message's status when this row was last brought up to date (outcomes.sync).
    message_status: Mapped[str | None] = mapped_column(String(16))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
