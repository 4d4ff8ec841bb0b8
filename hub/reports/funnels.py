"""Template and broadcast funnels (docs/metrics.md): the template messages sent in a
period, per template and per broadcast, sent -> delivered -> read -> replied, failed,
with their cost.

Read straight from what the hub stores (the messages with the statuses the webhooks
set, their cost, broadcast_recipients.message_id), in one grouped statement over the
period's template messages (migration 0025 indexes them by time). A reply is a message
from the same contact on the same channel, in any of its conversations (a reply to a
closed conversation opens a new one), within REPLY_WINDOW after the template message
was sent.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Interval, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from hub.models import Broadcast, BroadcastRecipient, Conversation, Message, ReportFact
from hub.reports.metrics import share
from hub.reports.rows import Filters

# WhatsApp's customer service window: a customer who writes within it answered the template.
REPLY_WINDOW = timedelta(hours=24)
MICRO = Decimal("0.000001")  # the scale of messages.cost
STAGES = ("messages", "sent", "delivered", "read", "replied", "failed")


def _reply_exists(session: Session, m: Any, c: Any, window: timedelta) -> Any:
    """A customer message of the same contact and channel within `window` after m was sent."""
    i, ic = aliased(Message), aliased(Conversation)
    sent_time = func.coalesce(m.accepted_at, m.sent_at)
    if session.get_bind().dialect.name == "postgresql":
        before_end = i.sent_at <= sent_time + literal(window, Interval())
    else:  # SQLite keeps datetimes as text: compare as Julian days
        before_end = func.julianday(i.sent_at) <= func.julianday(sent_time) + window.total_seconds() / 86400
    return exists().where(ic.contact_id == c.contact_id, ic.channel_id == c.channel_id,
                          i.conversation_id == ic.id, i.direction == "in", i.sent_at > sent_time, before_end)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _grouped(session: Session, f: Filters, window: timedelta) -> list[Any]:
    m, c, r = Message, Conversation, BroadcastRecipient
    sent = or_(m.accepted_at.is_not(None), m.delivered_at.is_not(None), m.read_at.is_not(None))
    failed = m.status == "failed"
    per_message = (select(m.template_name, m.template_language, m.template_category, r.broadcast_id, m.currency,
                          _flag(sent).label("sent"), _flag(m.delivered_at.is_not(None)).label("delivered"),
                          _flag(m.read_at.is_not(None)).label("read"), _flag(failed).label("failed"),
                          _flag(and_(sent, ~failed, _reply_exists(session, m, c, window))).label("replied"),
                          m.cost)
                   .join(c, c.id == m.conversation_id).outerjoin(r, r.message_id == m.id)
                   .where(m.direction == "out", m.template_name.is_not(None), m.sent_at >= f.start,
                          m.sent_at < f.end))
    for column, value in (("channel_id", f.channel_id), ("team_id", f.team_id), ("assignee_id", f.assignee_id)):
        if value is not None:
            per_message = per_message.where(getattr(c, column) == value)
    if f.source is not None:
        per_message = per_message.join(ReportFact, ReportFact.conversation_id == c.id).where(
            ReportFact.source == f.source)
    # Materialized, so the reply check runs once per message (inlined, PostgreSQL
    # evaluated it once for each stage that reads it).
    one = per_message.cte("per_message").prefix_with("MATERIALIZED", dialect="postgresql")
    keys = (one.c.template_name, one.c.template_language, one.c.template_category, one.c.broadcast_id,
            one.c.currency)
    # Each stage counts the messages that got at least that far: a reply was also delivered and read.
    most = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    return session.execute(
        select(*keys, func.count(), func.sum(one.c.sent), func.sum(most(one.c.delivered, one.c.read, one.c.replied)),
               func.sum(most(one.c.read, one.c.replied)), func.sum(one.c.replied), func.sum(one.c.failed),
               func.sum(one.c.cost))
        .group_by(*keys)).all()


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(STAGES, 0), "cost": defaultdict(Decimal)}


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    """Percentages of the sent messages, and the cost per currency and per reply."""
    cost = {cur: amount.quantize(MICRO) for cur, amount in row.pop("cost").items()}
    row.update(delivered_percent=share(row["delivered"], row["sent"]), read_percent=share(row["read"], row["sent"]),
               replied_percent=share(row["replied"], row["sent"]),
               failed_percent=share(row["failed"], row["messages"]),
               cost=[{"currency": cur, "amount": str(amount)} for cur, amount in sorted(cost.items())],
               cost_per_reply=[{"currency": cur, "amount": str((amount / row["replied"]).quantize(MICRO))}
                               for cur, amount in sorted(cost.items()) if row["replied"]])
    return row


def funnels(session: Session, f: Filters, *, window: timedelta = REPLY_WINDOW) -> dict[str, list[dict[str, Any]]]:
    """{"templates": [...], "broadcasts": [...]}: per template (name, language, category)
    and per broadcast, the stages of the template messages sent in the period."""
    templates: dict[tuple, dict[str, Any]] = defaultdict(_empty)
    broadcasts: dict[int, dict[str, Any]] = defaultdict(_empty)
    for name, language, category, broadcast_id, currency, *counts, cost in _grouped(session, f, window):
        targets = [templates[(name, language or "", category or "")]]
        if broadcast_id is not None:
            targets.append(broadcasts[broadcast_id])
        for target in targets:
            for stage, n in zip(STAGES, counts):
                target[stage] += int(n or 0)
            if cost is not None:
                target["cost"][currency or "?"] += Decimal(cost)
    names = {b.id: b for b in session.scalars(select(Broadcast).where(Broadcast.id.in_(list(broadcasts))))} \
        if broadcasts else {}
    template_rows = [_finish({"template": name, "language": language, "category": category, **row})
                     for (name, language, category), row in templates.items()]
    broadcast_rows = []
    for broadcast_id, row in broadcasts.items():
        b = names.get(broadcast_id)
        broadcast_rows.append(_finish({"broadcast_id": broadcast_id, "name": b.name if b else "",
                                       "template": b.template_name if b else "",
                                       "language": b.template_language if b else "", **row}))
    template_rows.sort(key=lambda t: (-t["messages"], t["template"], t["language"], t["category"]))
    broadcast_rows.sort(key=lambda t: (-t["messages"], t["broadcast_id"]))
    return {"templates": template_rows, "broadcasts": broadcast_rows}
