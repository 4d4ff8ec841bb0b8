"""Raw inbound webhook bodies, kept before parsing so nothing is ever lost."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId

RAW_STATUSES = ("processed", "failed")


class RawWebhook(Base):
    __tablename__ = "raw_webhooks"
    __table_args__ = (
        CheckConstraint("status IN ('processed', 'failed')", name="status"),
        Index("ix_raw_webhooks_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # which processor parses it
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChannelUpdate(Base):
    """An update id a channel has applied (Telegram's update_id, per bot): a repeated
    update finds its id here and changes nothing."""

    __tablename__ = "channel_updates"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
