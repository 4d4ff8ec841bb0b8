"""A customer: one row per channel identity (a WhatsApp user, a Telegram user, ...),
and the person several of them are (contacts linked across channels)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
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
    # An operator named the contact (PATCH /api/v1/contacts/<id>): the channels' profile
    # names no longer replace the name.
    name_by_operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The channel refuses messages to this person (Telegram: they blocked the bot), and
    # why; cleared when they write again.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    # The canonical contact of the person this one is (NULL: it is its own person). Always
    # a canonical contact itself, never a chain, so one lookup finds the person.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ContactMerge(Base):
    """One link of a contact to a person, with what it changed, so it can be undone
    exactly: `moved` holds {"contacts": {id: person_id before}, "phone": phone before}."""

    __tablename__ = "contact_merges"
    __table_args__ = (CheckConstraint("reason IN ('shared_phone', 'operator')", name="reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    moved: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ProfileFetch(Base):
    """A contact's name still to be asked of its channel (Instagram's webhooks name no
    one): one row per contact, so it is asked once, retried with backoff while `due_at`
    is set; `fetched_at` (or `error`, for good) once done."""

    __tablename__ = "profile_fetches"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = created_at()


class ContactTag(Base):
    """A tag on a contact (set through the API, the admin or a scenario), one row per tag
    so that an audience "has tag X" is an indexed lookup, not a scan of every contact."""

    __tablename__ = "contact_tags"
    __table_args__ = (Index("ix_contact_tags_tag", "tag", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = created_at()


class ContactField(Base):
    """A custom field of a contact ("city": "Berlin") kept as text: broadcasts compare it
    and fill template variables with it, scenarios read numbers back out of it."""

    __tablename__ = "contact_fields"
    __table_args__ = (Index("ix_contact_fields_value", "name", "value"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))  # indexed: 500 characters fit a b-tree key
    updated_at: Mapped[datetime] = updated_at()


class ContactCrmStage(Base):
    """Where the contact's deal stands in each CRM pipeline, as the connector last reported
    it (hub.crm.deal_outcomes): audiences select by it without asking the CRM. `pipeline`
    is "" when the CRM named none."""

    __tablename__ = "contact_crm_stages"
    __table_args__ = (Index("ix_contact_crm_stages_stage", "stage", "pipeline"),
                      Index("ix_contact_crm_stages_stage_name", "stage_name", "pipeline"))

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    stage: Mapped[str] = mapped_column(String(64))
    stage_name: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(8))
    deal_id: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[int | None] = mapped_column(ForeignKey("connectors.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
