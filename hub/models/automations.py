"""Automations (hub.automations): scenarios with their versions, runs, step logs, the
contact profile scenarios write into, and the cursor of the event stream they read."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId, created_at, updated_at

RUN_STATUSES = ("active", "waiting", "paused", "completed", "handed_off", "closed", "stopped", "failed")
LIVE = "status IN ('active', 'waiting', 'paused')"


class Scenario(Base):
    """A scenario: its draft (edited freely, never run) and the version that runs."""

    __tablename__ = "automation_scenarios"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    draft: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The published version (None: nothing runs); rollback points it at an older one.
    # (A plain id: a foreign key would make the two tables refer to each other.)
    published_version_id: Mapped[int | None] = mapped_column(Integer)
    # Cached from the published definition: triggers are looked up by type.
    trigger_type: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ScenarioVersion(Base):
    """A published definition, immutable: runs keep the version they started with."""

    __tablename__ = "automation_versions"
    __table_args__ = (UniqueConstraint("scenario_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("automation_scenarios.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()


class Run(Base):
    """One scenario running in one conversation; at most one live run per conversation."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'waiting', 'paused', 'completed', 'handed_off', 'closed', "
                        "'stopped', 'failed')", name="status"),
        Index("uq_automation_runs_live", "conversation_id", unique=True,
              sqlite_where=text(LIVE), postgresql_where=text(LIVE)),
        # The wake-up scan: waiting runs by when they are due.
        Index("ix_automation_runs_wake", "wake_at", sqlite_where=text("status = 'waiting'"),
              postgresql_where=text("status = 'waiting'")),
        Index("ix_automation_runs_scenario", "scenario_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("automation_scenarios.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("automation_versions.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    step_id: Mapped[str | None] = mapped_column(String(64))
    # The engine's state (answers, retries, http results, what it waits for).
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = updated_at()


class StepLog(Base):
    """What a step did: sent, stored, why it branched; per conversation for the daily limit."""

    __tablename__ = "automation_step_logs"
    __table_args__ = (
        Index("ix_automation_step_logs_run", "run_id", "id"),
        Index("ix_automation_step_logs_conversation", "conversation_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("automation_runs.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    step_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Cursor(Base):
    """How far the automations have read a stream (events by (created_at, id))."""

    __tablename__ = "automation_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_id: Mapped[str | None] = mapped_column(String(64))
