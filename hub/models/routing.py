"""Contact-center routing: teams, operators' presence and capacity, rules, the queue."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import created_at, updated_at

STRATEGIES = ("round_robin", "least_busy", "sticky", "first_responder")
PRESENCES = ("online", "away", "offline")


class Team(Base):
    """Operators who answer the same chats, with their hours (in the team's time zone)."""

    __tablename__ = "teams"
    __table_args__ = (
        CheckConstraint("strategy IN ('round_robin', 'least_busy', 'sticky', 'first_responder')",
                        name="strategy"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    strategy: Mapped[str] = mapped_column(String(16), default="round_robin")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # {"mon": [["09:00", "18:00"]], ...}; a weekday not named is closed; {} is always open.
    hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    holidays: Mapped[list[str]] = mapped_column(JSONType, default=list)  # ISO dates, closed all day
    channel_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # [] serves every channel
    # Sticky: how long the contact's previous operator is waited for before anyone else.
    sticky_wait_seconds: Mapped[int] = mapped_column(Integer, default=0)
    off_hours_reply: Mapped[str | None] = mapped_column(Text)
    # SLA policy (hub.routing.sla): {"first_response_seconds": 300, "next_response_seconds": 600,
    # "resolution_seconds": 86400, "warn_before_seconds": 60, "reassign_on_breach": true,
    # "supervisor_id": 3}; {} has no clocks.
    sla: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class OperatorState(Base):
    """An operator's presence and capacity; one row per user who ever took chats."""

    __tablename__ = "operator_states"
    __table_args__ = (
        CheckConstraint("presence IN ('online', 'away', 'offline')", name="presence"),
        CheckConstraint("capacity >= 0", name="capacity"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    capacity: Mapped[int] = mapped_column(Integer, default=5)  # open conversations at most
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # last request: presence timeout
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    changed_at: Mapped[datetime] = updated_at()
    # Their open conversations, kept by the database's triggers on conversations (migration
    # 0028) in the statement that changes a chat's assignee or status: read, never written.
    open_chats: Mapped[int] = mapped_column(Integer, server_default="0")


class RoutingRule(Base):
    """Evaluated in `position` order; the first whose conditions all hold sends the
    conversation to its team or operator."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        CheckConstraint("(team_id IS NULL) <> (user_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"channel_ids": [1], "keywords": ["price"], "utm_source": ["google"], "lead_kind": [...],
    #  "contact_fields": {"name": "..."}, "hours": ["09:00", "18:00"], "time_zone": "Europe/Berlin"}
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = created_at()


class QueueEntry(Base):
    """A conversation waiting for an operator: of a team (FIFO by queued_at) or of one
    operator (a rule's target, or a sticky contact's previous operator until
    `wait_until`)."""

    __tablename__ = "routing_queue"
    __table_args__ = (
        CheckConstraint("team_id IS NOT NULL OR user_id IS NOT NULL", name="has_target"),
        Index("ix_routing_queue_team_queued", "team_id", "queued_at"),
    )

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # no_operator, off_hours, waiting_for_operator, offered
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    off_hours_replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SlaMark(Base):
    """An SLA warning or breach already announced: one per conversation, target, clock
    start (each customer message after a reply starts a next-response clock) and level."""

    __tablename__ = "sla_marks"
    __table_args__ = (
        CheckConstraint("level IN ('warning', 'breached')", name="level"),
    )

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    target: Mapped[str] = mapped_column(String(16), primary_key=True)  # first_response, next_response, resolution
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    level: Mapped[str] = mapped_column(String(8), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
