"""Scheduled reports and the history of what they sent."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, JSONType, UTCDateTime
from hub.models._types import BigId, created_at, updated_at

FREQUENCIES = ("daily", "weekly", "monthly")


class ReportSchedule(Base):
    """Every day, week (on `weekday`, 0 = Monday) or month (on `day_of_month`) at
    `at_time` in `time_zone`: the figures of the period that just ended, by e-mail to
    `recipients` and/or as a report.ready event."""

    __tablename__ = "report_schedules"
    __table_args__ = (
        CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')", name="frequency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    frequency: Mapped[str] = mapped_column(String(8))
    at_time: Mapped[str] = mapped_column(String(5))  # HH:MM
    weekday: Mapped[int] = mapped_column(Integer, default=0)
    day_of_month: Mapped[int] = mapped_column(Integer, default=1)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # channel_id, team_id, missed_minutes
    recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    webhook: Mapped[bool] = mapped_column(Boolean, default=False)  # emit report.ready
    # Optional parts beside the headline figures (hub.reports.runs.SECTIONS): "templates", "broadcasts".
    sections: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ReportRun(Base):
    """One period of one schedule: written before anything is sent, so a period is
    never sent twice (however often the scheduler looks)."""

    __tablename__ = "report_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "period_end", name="one_run_per_period"),
        CheckConstraint("status IN ('sending', 'sent', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("report_schedules.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str] = mapped_column(Text, default="")
    manual: Mapped[bool] = mapped_column(Boolean, default=False)  # "send now"
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()


class ReportDeal(Base):
    """The latest state of each CRM deal of a conversation, as the CRM connectors report
    it (deal.stage_changed): the reports' read model for deals, won deals and revenue
    per lead source, so a report needs no CRM and no scan of the event log."""

    __tablename__ = "report_deals"
    __table_args__ = (
        UniqueConstraint("conversation_id", "deal_id", name="one_row_per_deal"),
        CheckConstraint("outcome IN ('won', 'lost', 'open')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    connector_id: Mapped[int | None] = mapped_column(ForeignKey("connectors.id", ondelete="SET NULL"))
    deal_id: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportTemplateMessage(Base):
    """One template message's funnel (docs/metrics.md): the stages it reached, whether
    the customer answered within the reply window, its cost, and the keys the funnels
    group and filter by (its conversation's channel, team, operator and lead source).
    Kept by the reports' pass for every template message of the contacts of the
    conversations it computes (hub.reports.template_facts), so a period's funnels add up
    one narrow row per message instead of probing each message's contact for a reply."""

    __tablename__ = "report_template_messages"
    __table_args__ = (Index("ix_report_template_messages_sent", "sent_at"),)

    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True,
                                            autoincrement=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())  # queued, as messages.sent_at
    template_name: Mapped[str] = mapped_column(String(512))
    template_language: Mapped[str | None] = mapped_column(String(16))
    template_category: Mapped[str | None] = mapped_column(String(32))
    broadcast_id: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    channel_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200), default="")
    # 1 when the message got at least that far, else 0 (a reply was delivered and read).
    sent: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer)
    read: Mapped[int] = mapped_column(Integer)
    replied: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))


# A native float8[] on PostgreSQL (unnest() of it is what the percentiles read), JSON elsewhere.
FloatList = JSON().with_variant(ARRAY(Float), "postgresql")


class ReportFact(Base):
    """One conversation's figures (docs/metrics.md), computed once and kept: the
    incrementally maintained aggregate the summary adds up with GROUP BY instead of
    reading every message of the period (hub.reports.facts keeps it up to date from the
    event log; `hub reports rebuild` computes it all again)."""

    __tablename__ = "report_facts"
    __table_args__ = (
        Index("ix_report_facts_opened", "opened_at"),
        # The chats still waiting for a first human reply, whose missed verdict moves with time.
        # With the team and the first message, so the missed count reads the index alone.
        Index("ix_report_facts_waiting", "opened_at", "team_id", "first_inbound_at",
              postgresql_where=text("first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL"),
              sqlite_where=text("first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL")),
    )

    # No foreign key: a fact outlives its conversation (a channel or contact deleted with
    # its conversations) until the next pass takes it out of the rollups (hub.reports.facts).
    conversation_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200), default="")
    campaign: Mapped[str] = mapped_column(String(200), default="")
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    # Business seconds from the customer's first message to the first human reply; with
    # first_inbound_at and no reply, missed is decided against the clock when asked.
    first_wait_seconds: Mapped[float | None] = mapped_column(Float)
    first_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    responses: Mapped[list[float]] = mapped_column(FloatList, default=list)  # every response time, seconds
    human_replies: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    currency: Mapped[str] = mapped_column(String(3), default="")
    cost_by_category: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)  # "category currency" -> sum
    sla: Mapped[bool | None] = mapped_column(Boolean)
    recheck: Mapped[bool] = mapped_column(Boolean, default=False)  # may change with time alone (waiting, SLA running)
    deals: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    revenue: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)  # currency -> won amounts
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportFactState(Base):
    """How far the facts have followed the event log (one row)."""

    __tablename__ = "report_fact_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    followed_until: Mapped[datetime] = mapped_column(UTCDateTime())


# A rollup's "none" for an id (a conversation without a team, say): 0, never a real id,
# so that the unique key, which the incremental upserts meet on, holds for it too.
NONE_ID = 0


class ReportRollup(Base):
    """The report facts added up per hour and per day (UTC, `grain`) and per channel,
    team, operator, lead source, campaign and currency: what the summary of a long
    period reads instead of one row per conversation. Kept by adding each changed
    fact's difference (hub.reports.rollups), under the facts' lock."""

    __tablename__ = "report_rollups"
    __table_args__ = (
        UniqueConstraint("grain", "start", "channel_id", "team_id", "assignee_id", "source", "campaign", "currency",
                         name="one_rollup_per_key"),
        CheckConstraint("grain IN ('hour', 'day')", name="grain"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grain: Mapped[str] = mapped_column(String(4))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    channel_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(Integer)
    assignee_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
    campaign: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    human_replies: Mapped[int] = mapped_column(Integer, default=0)
    priced: Mapped[int] = mapped_column(Integer, default=0)  # conversations with a cost
    cost: Mapped[Decimal] = mapped_column(Numeric(20, 6), default=0)
    deals: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    sla_met: Mapped[int] = mapped_column(Integer, default=0)
    sla_decided: Mapped[int] = mapped_column(Integer, default=0)


class ReportRollupMoney(Base):
    """Beside report_rollups, per hour and day and the same keys: the cost per pricing
    category (`kind` cost) and the revenue of won deals (`kind` revenue), per currency."""

    __tablename__ = "report_rollup_money"
    __table_args__ = (
        UniqueConstraint("grain", "start", "channel_id", "team_id", "assignee_id", "source", "campaign", "kind",
                         "category", "currency", name="one_amount_per_key"),
        CheckConstraint("kind IN ('cost', 'revenue')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grain: Mapped[str] = mapped_column(String(4))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    channel_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(Integer)
    assignee_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
    campaign: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 6), default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)  # conversations adding to it (0: the row goes)


class ReportBucket(Base):
    """How many times (first response, response, resolution, first wait) fell in each
    range of hub.reports.rollups.BOUNDS per day (UTC), overall (`dim` all) and per one
    channel, team, operator or source: where a percentile of a long period is found
    before its exact value is read from the few report_times of that range."""

    __tablename__ = "report_buckets"
    __table_args__ = (
        UniqueConstraint("start", "metric", "bucket", "dim", "value", name="one_count_per_bucket"),
        # A period's counts for one filter (or none): the days of one (dim, value).
        Index("ix_report_buckets_dim", "dim", "value", "start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    metric: Mapped[str] = mapped_column(String(10))
    bucket: Mapped[int] = mapped_column(Integer)
    dim: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(200))
    n: Mapped[int] = mapped_column(Integer, default=0)


class ReportTime(Base):
    """Every time of every conversation's facts, one row each, with its bucket: the
    exact values the percentiles read, a bucket at a time."""

    __tablename__ = "report_times"
    # Ranked: a bucket's times in order, so a percentile's offset walks the index alone
    # instead of sorting a crowded bucket; opened: a period's edges counted per bucket
    # from the index alone.
    __table_args__ = (Index("ix_report_times_ranked", "metric", "bucket", "seconds", "opened_at"),
                      Index("ix_report_times_opened", "opened_at", "metric", "bucket"))

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(10))
    bucket: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
