"""Keeping report_facts (one row of figures per conversation) up to date.

A conversation's figures change when something happens to it, and every such thing is
an event of the outbox with the conversation in its ordering key (a message in or out,
a status with its price, an assignment, a close, a deal's stage). follow() reads the
events since it last looked (with a margin, since a transaction may commit an event
stamped a little earlier) and computes those conversations again, plus the open ones
whose SLA verdict can change with time alone, and those deleted since (a channel or
contact removed with its conversations leaves no event; its facts, which have no foreign
key for that reason, are found by an anti-join and taken out of the rollups). Computing a conversation again is
idempotent, so reading an event twice costs time, never a wrong figure; each fact
written changes the per-hour and per-day rollups by its difference (hub.reports.rollups)
in the same transaction, under the lock on report_fact_state that every writer of
facts takes first; the same transaction computes again the funnel rows of the template
messages of those conversations' contacts (hub.reports.template_facts). rebuild()
computes every conversation and the rollups from nothing (`hub reports rebuild`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.models import Conversation, Event, ReportFact, ReportFactState, Team
from hub.reports import rollups, template_facts
from hub.reports.rows import Filters, rows, source_of

# The events that may change a conversation's figures.
EVENTS = ("message.received", "message.sent", "message.status", "conversation.started", "conversation.assigned",
          "conversation.closed", "conversation.transferred", "lead.attributed", "deal.stage_changed")
MARGIN = timedelta(minutes=2)
BATCH = 500
KEY_PREFIX = "conversation:"


def fact_of(row: dict[str, Any], *, with_policy: set[int], now: datetime) -> dict[str, Any]:
    """The report_facts row of an export row (pure)."""
    deal = row["_deals"]
    return {
        "conversation_id": row["conversation_id"], "opened_at": datetime.fromisoformat(row["opened_at"]),
        "channel_id": row["_channel_id"], "team_id": row["_team_id"], "assignee_id": row["_assignee_id"],
        "source": source_of(row)[:200], "campaign": row["utm_campaign"][:200], "closed": row["status"] == "closed",
        "first_response_seconds": row["first_response_seconds"], "first_wait_seconds": row["_first_wait"],
        "first_inbound_at": row["_first_inbound_at"], "resolution_seconds": row["resolution_seconds"],
        "responses": [float(v) for v in row["_responses"]],
        "human_replies": row["human_replies"], "cost": Decimal(row["cost"]) if row["cost"] else None,
        "currency": row["currency"] or "",
        "cost_by_category": {f"{category}\t{currency}": str(amount)
                             for (category, currency), amount in sorted(row["_cost_by_category"].items())},
        "sla": row["_sla"],
        "recheck": row["status"] != "closed" and row["_sla"] is None and row["_team_id"] in with_policy,
        "deals": deal.deals, "won": deal.won, "revenue": {k: str(v) for k, v in sorted(deal.revenue.items())},
        "computed_at": now,
    }


def _policies(session: Session) -> set[int]:
    return {t.id for t in session.scalars(select(Team)) if t.sla}


def refresh(session: Session, conversation_ids: Iterable[int], *, now: datetime, marks: bool = True) -> int:
    """Compute these conversations' facts again (a conversation deleted since: its fact
    taken out of the rollups and gone) and, with `marks`, the funnels of the template
    messages of their contacts (hub.reports.template_facts). Returns how many were written."""
    ids = sorted(set(conversation_ids))
    with_policy = _policies(session)
    written = 0
    for i in range(0, len(ids), BATCH):
        chunk = tuple(ids[i:i + BATCH])
        facts = [fact_of(row, with_policy=with_policy, now=now)
                 for row in rows(session, Filters(start=now, end=now, conversation_ids=chunk), now=now)]
        old = [dict(r._mapping) for r in session.execute(
            select(ReportFact.__table__).where(ReportFact.conversation_id.in_(chunk)))]
        session.execute(delete(ReportFact).where(ReportFact.conversation_id.in_(chunk)))
        if facts:
            session.execute(ReportFact.__table__.insert(), facts)
        rollups.apply(session, old, facts, chunk)
        if marks:
            template_facts.mark(session, chunk)
        written += len(facts)
    return written


def _touched(session: Session, since: datetime) -> set[int]:
    out = set()
    for key in session.scalars(select(Event.ordering_key).where(Event.type.in_(EVENTS), Event.occurred_at >= since,
                                                                Event.ordering_key.startswith(KEY_PREFIX))
                               .distinct()):
        tail = key[len(KEY_PREFIX):]
        if tail.isdigit():
            out.add(int(tail))
    return out


def catch_up(db: Any, *, now: datetime) -> None:
    """Take in the events since the scheduler's last pass before figures are read, so a
    report is as of `now`; two readers building the very first facts at once leave one
    to do it (the other's insert fails on the state row, harmlessly)."""
    try:
        with db.scope() as session:
            follow(session, now=now, recheck=False)
    except IntegrityError:
        pass


def _orphaned(session: Session) -> set[int]:
    """The facts whose conversation is gone (deleted with its channel or contact, which
    leaves no event): computed again, they leave the rollups. One anti-join of two
    primary keys."""
    alive = select(Conversation.id).where(Conversation.id == ReportFact.conversation_id)
    return set(session.scalars(select(ReportFact.conversation_id).where(~alive.exists())))


def follow(session: Session, *, now: datetime, recheck: bool = True) -> int:
    """Bring the facts up to `now`: the conversations with events since the last look
    and (`recheck`, the scheduler's pass) those whose SLA verdict waits on the clock.
    Returns how many were computed."""
    state = session.get(ReportFactState, 1, with_for_update=True)
    if state is None:
        return rebuild(session, now=now)
    ids = _touched(session, state.followed_until - MARGIN)
    if recheck:
        ids |= set(session.scalars(select(ReportFact.conversation_id).where(ReportFact.recheck.is_(True))))
    ids |= _orphaned(session)
    # Conversations written without an event (imports, tests' fixtures): past the newest fact.
    newest = session.scalar(select(func.max(ReportFact.conversation_id))) or 0
    ids |= set(session.scalars(select(Conversation.id).where(Conversation.id > newest)))
    state.followed_until = now
    return refresh(session, ids, now=now)


def rebuild(session: Session, *, now: datetime) -> int:
    """Every conversation's facts computed again, in id order."""
    state = session.get(ReportFactState, 1, with_for_update=True)
    if state is None:
        session.add(ReportFactState(id=1, followed_until=now))
    else:
        state.followed_until = now
    session.flush()
    session.execute(delete(ReportFact))
    rollups.clear(session)
    written, last = 0, 0
    while True:
        ids = list(session.scalars(select(Conversation.id).where(Conversation.id > last)
                                   .order_by(Conversation.id).limit(BATCH * 4)))
        if not ids:
            break
        written += refresh(session, ids, now=now, marks=False)
        last = ids[-1]
    template_facts.rebuild(session)
    return written


def lag(session: Session, *, now: datetime) -> timedelta | None:
    """How far behind the events the facts are (None before the first build)."""
    state = session.get(ReportFactState, 1)
    if state is None:
        return None
    newest = session.scalar(select(func.max(Event.occurred_at)).where(Event.type.in_(EVENTS)))
    if newest is None or newest <= state.followed_until:
        return timedelta(0)
    return now - state.followed_until
