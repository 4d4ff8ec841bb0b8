"""Configured connectors (subscribers of events) and their links to CRM objects."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId, created_at, updated_at


class ConnectorRecord(Base):
    __tablename__ = "connectors"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Plain settings; the fields the Settings schema marks secret live in secrets_enc.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    secrets_enc: Mapped[str] = mapped_column(Text, default="")
    # Event types this connector receives; NULL means every type its kind handles.
    event_types: Mapped[list[str] | None] = mapped_column(JSONType)
    # Unguessable part of /webhooks/connectors/<key> for CRMs that sign nothing.
    webhook_key: Mapped[str] = mapped_column(String(64), unique=True)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_message: Mapped[str] = mapped_column(Text, default="")
    health_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Scheduled pulls from the CRM (hub.crm.pull): asked for by the scheduler, done
    # by a worker; `pulled_until` is where the next pull starts reading.
    pull_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pulled_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CrmLink(Base):
    """hub entity -> CRM object, so retries find what an earlier attempt created."""

    __tablename__ = "crm_links"
    __table_args__ = (
        UniqueConstraint("connector_id", "entity_type", "entity_id"),
        Index("ix_crm_links_crm", "connector_id", "crm_type", "crm_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connector_id: Mapped[int] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(32))  # contact, conversation, message
    entity_id: Mapped[str] = mapped_column(String(64))
    crm_type: Mapped[str] = mapped_column(String(32))  # contact, lead, deal, note...
    crm_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
