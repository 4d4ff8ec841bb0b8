"""A customer: one row per WhatsApp user, whichever number they wrote to."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, UTCDateTime
from hub.models._types import created_at, updated_at


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The phone as WhatsApp reports it (digits, no '+'); absent for username-only users.
    wa_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Business-scoped user id (2026+), the stable key when the phone is hidden.
    user_id: Mapped[str | None] = mapped_column(String(160), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    name: Mapped[str] = mapped_column(String(256), default="")
    username: Mapped[str | None] = mapped_column(String(128))
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The channel refuses messages to this person (Telegram: they blocked the bot), and
    # why; cleared when they write again.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
