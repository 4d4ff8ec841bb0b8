"""Message templates (HSM) of a WhatsApp Business Account, synced from Meta."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import created_at, updated_at


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("waba_id", "name", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    waba_id: Mapped[str] = mapped_column(String(64), index=True)
    wa_template_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))  # APPROVED, PENDING, REJECTED, PAUSED, ...
    category: Mapped[str | None] = mapped_column(String(32))  # MARKETING, UTILITY, AUTHENTICATION
    quality_score: Mapped[str | None] = mapped_column(String(16))
    parameter_format: Mapped[str] = mapped_column(String(16), default="POSITIONAL")
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
