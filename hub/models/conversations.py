"""Conversations between a channel and a contact, and their messages."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId, created_at, updated_at


OUTBOX = "direction = 'out' AND status IN ('queued', 'sending')"
TEMPLATED = "direction = 'out' AND template_name IS NOT NULL"


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        # At most one open conversation per (channel, contact): concurrent webhooks for
        # the same user cannot open two.
        Index(
            "uq_conversations_open_per_contact",
            "channel_id",
            "contact_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        # Routing counts each operator's open chats and the SLA sweep walks a team's.
        Index("ix_conversations_open_assignee", "assignee_id", sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
        Index("ix_conversations_open_team", "team_id", sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The team routing gave it to (hub.routing); kept when an operator of it is assigned.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Timestamp (WhatsApp's, not receipt time) of the last user message: the 24 h window.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lead_source: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Click-to-WhatsApp entry (a user message carrying `referral`) and the free entry
    # point it led to: both decide what replies cost.
    ctwa_entry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fep_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        Index("ix_messages_conversation_sent", "conversation_id", "sent_at"),
        # The outbound queue: only messages still waiting to be sent.
        Index("ix_messages_outbox", "conversation_id", "id",
              sqlite_where=text(OUTBOX), postgresql_where=text(OUTBOX)),
        # The template funnels (hub.reports.funnels): a period's template messages.
        Index("ix_messages_templated_sent", "sent_at", sqlite_where=text(TEMPLATED), postgresql_where=text(TEMPLATED)),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # Meta's wamid: unique, so retried and duplicated webhooks insert nothing twice.
    wa_message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    direction: Mapped[str] = mapped_column(String(3))
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column()
    error_title: Mapped[str | None] = mapped_column(Text)
    # WhatsApp's timestamp for inbound; when it was queued for outbound.
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reply_to: Mapped[str | None] = mapped_column(String(255))  # wamid quoted (context)
    # Outbound only ---------------------------------------------------------------
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recipient: Mapped[str | None] = mapped_column(String(160))  # "to" as sent
    request: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # the API body
    template_name: Mapped[str | None] = mapped_column(String(512))
    template_language: Mapped[str | None] = mapped_column(String(16))
    template_category: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Derived from the message_statuses rows of this wamid (whatsapp/inbound/status_order.py), so any order or
    # duplication of status webhooks ends in the same state.
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # status "sent"
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Cost accounting ---------------------------------------------------------------
    billable: Mapped[bool | None] = mapped_column()
    pricing_model: Mapped[str | None] = mapped_column(String(8))
    pricing_type: Mapped[str | None] = mapped_column(String(32))
    pricing_category: Mapped[str | None] = mapped_column(String(40))
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


OUTBOX_STATUSES = ("queued", "sending")


class MessageStatus(Base):
    """Every status webhook, one row per (wamid, status). Kept even when the message is
    not known yet: a status can outrun the commit of the send that produced the wamid."""

    __tablename__ = "message_statuses"
    __table_args__ = (UniqueConstraint("wa_message_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wa_message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    # errors, pricing, conversation, recipient ids, as sent by Meta.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
