"""Template and broadcast funnels (docs/metrics.md): the template messages sent in a
period, per template and per broadcast, sent -> delivered -> read -> replied, failed,
with their cost.

Added up from report_template_messages, one narrow row per template message that the
reports' pass keeps (hub.reports.template_facts): one grouped statement over the
period's rows. A window other than the reply window (or `live`) checks the period's
template messages one by one instead (migration 0025 indexes them by time; a probe of
the contact's later messages for each), the definition the kept rows are pinned against.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Broadcast, Message, ReportTemplateMessage
from hub.reports.metrics import share
from hub.reports.rows import Filters
from hub.reports.template_facts import REPLY_WINDOW, per_message

MICRO = Decimal("0.000001")  # the scale of messages.cost
STAGES = ("messages", "sent", "delivered", "read", "replied", "failed")


def _grouped(session: Session, f: Filters, window: timedelta, live: bool) -> list[Any]:
    if live or window != REPLY_WINDOW:
        one = per_message(session, window, Message.sent_at >= f.start, Message.sent_at < f.end)
        period = []
    else:
        one = ReportTemplateMessage.__table__
        period = [one.c.sent_at >= f.start, one.c.sent_at < f.end]
    chosen = [one.c[column] == value for column, value in (
        ("channel_id", f.channel_id), ("team_id", f.team_id), ("assignee_id", f.assignee_id), ("source", f.source))
        if value is not None]
    keys = (one.c.template_name, one.c.template_language, one.c.template_category, one.c.broadcast_id,
            one.c.currency)
    return session.execute(
        select(*keys, func.count(), *[func.sum(one.c[stage]) for stage in STAGES[1:]], func.sum(one.c.cost))
        .where(*period, *chosen).group_by(*keys)).all()


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


def funnels(session: Session, f: Filters, *, window: timedelta = REPLY_WINDOW,
            live: bool = False) -> dict[str, list[dict[str, Any]]]:
    """{"templates": [...], "broadcasts": [...]}: per template (name, language, category)
    and per broadcast, the stages of the template messages sent in the period; the
    replies from the pass's marks, or checked message by message (`live`, or another
    `window`)."""
    templates: dict[tuple, dict[str, Any]] = defaultdict(_empty)
    broadcasts: dict[int, dict[str, Any]] = defaultdict(_empty)
    for name, language, category, broadcast_id, currency, *counts, cost in _grouped(session, f, window, live):
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
