"""One row per conversation of a period, with its metrics; and the period's summary.

Conversations are read in batches of BATCH with their messages, so an export of a
busy month streams in constant memory.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Channel, Contact, Conversation, Message, Team, User
from hub.reports import metrics
from hub.routing.sla import Beat

BATCH = 500
COLUMNS = ("conversation_id", "channel", "contact_name", "contact_phone", "operator", "team", "status",
           "opened_at", "closed_at", "first_response_seconds", "resolution_seconds", "missed", "messages_in",
           "messages_out", "human_replies", "lead_kind", "utm_source", "utm_medium", "utm_campaign", "cost",
           "currency")


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    channel_id: int | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    missed_seconds: float = 15 * 60


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _clock(team: Team | None) -> metrics.Clock:
    if team is None or not (team.hours or team.holidays):
        return metrics.ALWAYS
    return metrics.Clock(team.hours or {}, tuple(team.holidays or ()), team.time_zone)


def _query(f: Filters) -> Any:
    q = select(Conversation).where(Conversation.opened_at >= f.start, Conversation.opened_at < f.end)
    if f.channel_id:
        q = q.where(Conversation.channel_id == f.channel_id)
    if f.team_id:
        q = q.where(Conversation.team_id == f.team_id)
    if f.assignee_id:
        q = q.where(Conversation.assignee_id == f.assignee_id)
    return q.order_by(Conversation.id)


def rows(session: Session, f: Filters, *, now: datetime) -> Iterator[dict[str, Any]]:
    """The conversations opened in [start, end) matching the filters, oldest first."""
    channels = {c.id: c.name for c in session.scalars(select(Channel))}
    teams = {t.id: t for t in session.scalars(select(Team))}
    users = {u.id: u.email for u in session.scalars(select(User))}
    last_id = 0
    while True:
        batch = list(session.scalars(_query(f).where(Conversation.id > last_id).limit(BATCH)))
        if not batch:
            return
        last_id = batch[-1].id
        ids = [c.id for c in batch]
        contacts = {c.id: c for c in session.scalars(select(Contact).where(
            Contact.id.in_({c.contact_id for c in batch})))}
        beats: dict[int, list[Beat]] = defaultdict(list)
        counts: dict[int, Counter] = defaultdict(Counter)
        cost: dict[int, Decimal] = defaultdict(Decimal)
        currency: dict[int, str] = {}
        for cid, at, direction, author, price, cur, kind in session.execute(
                select(Message.conversation_id, Message.sent_at, Message.direction, Message.author_id, Message.cost,
                       Message.currency, Message.type)
                .where(Message.conversation_id.in_(ids)).order_by(Message.conversation_id, Message.sent_at)):
            if kind in ("read", "reaction"):
                continue
            beats[cid].append(Beat(at=at, inbound=direction == "in", human=direction == "out" and author is not None))
            counts[cid][direction] += 1
            if direction == "out" and author is not None:
                counts[cid]["human"] += 1
            if price is not None:
                cost[cid] += price
                currency[cid] = cur or ""
        for c in batch:
            team = teams.get(c.team_id)
            clock = _clock(team)
            contact = contacts.get(c.contact_id)
            source = c.lead_source or {}
            first = metrics.first_response_seconds(beats[c.id], clock)
            resolution = metrics.resolution_seconds(c.opened_at, c.closed_at, clock)
            yield {
                "conversation_id": c.id, "channel": channels.get(c.channel_id, ""),
                "contact_name": contact.name if contact else "", "contact_phone": (contact.phone or "") if contact else "",
                "operator": users.get(c.assignee_id, ""), "team": team.name if team else "", "status": c.status,
                "opened_at": _iso(c.opened_at), "closed_at": _iso(c.closed_at),
                "first_response_seconds": round(first) if first is not None else None,
                "resolution_seconds": round(resolution) if resolution is not None else None,
                "missed": metrics.missed(beats[c.id], within_seconds=f.missed_seconds, now=now, clock=clock),
                "messages_in": counts[c.id]["in"], "messages_out": counts[c.id]["out"],
                "human_replies": counts[c.id]["human"],
                "lead_kind": "ad" if source.get("referral") else (source.get("kind") or ""),
                "utm_source": source.get("utm_source") or "", "utm_medium": source.get("utm_medium") or "",
                "utm_campaign": source.get("utm_campaign") or "",
                "cost": str(cost[c.id]) if c.id in cost else "", "currency": currency.get(c.id, ""),
                "_responses": metrics.response_seconds(beats[c.id], clock), "_team_id": c.team_id,
                "_assignee_id": c.assignee_id,
            }


def source_of(row: dict[str, Any]) -> str:
    """The source a row is counted under in `by_source` (docs/metrics.md)."""
    return row["utm_source"] or row["lead_kind"] or "(direct)"


@dataclass
class Summary:
    conversations: int = 0
    closed: int = 0
    answered: int = 0
    missed: int = 0
    first_response: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    by_operator: Counter = field(default_factory=Counter)
    replies_by_operator: Counter = field(default_factory=Counter)
    by_team: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)
    by_campaign: Counter = field(default_factory=Counter)
    cost: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, row: dict[str, Any]) -> None:
        self.conversations += 1
        self.closed += row["status"] == "closed"
        self.missed += bool(row["missed"])
        if row["first_response_seconds"] is not None:
            self.answered += 1
            self.first_response.append(row["first_response_seconds"])
        self.response.extend(row["_responses"])
        if row["resolution_seconds"] is not None:
            self.resolution.append(row["resolution_seconds"])
        self.by_operator[row["operator"] or "(unassigned)"] += 1
        self.replies_by_operator[row["operator"] or "(unassigned)"] += row["human_replies"]
        self.by_team[row["team"] or "(no team)"] += 1
        self.by_source[source_of(row)] += 1
        if row["utm_campaign"]:
            self.by_campaign[row["utm_campaign"]] += 1
        if row["cost"]:
            self.cost[row["currency"] or "?"] += Decimal(row["cost"])

    def figures(self) -> dict[str, Any]:
        def seconds(values: list[float]) -> dict[str, Any]:
            return {"count": len(values), "median": metrics.median(values), "p90": metrics.percentile(values, 0.9)}

        return {
            "conversations": self.conversations, "closed": self.closed, "answered": self.answered,
            "missed": self.missed, "first_response_seconds": seconds(self.first_response),
            "response_seconds": seconds(self.response), "resolution_seconds": seconds(self.resolution),
            "response_histogram": metrics.histogram(self.response),
            "by_operator": [{"operator": k, "conversations": v, "replies": self.replies_by_operator[k]}
                            for k, v in self.by_operator.most_common()],
            "by_team": [{"team": k, "conversations": v} for k, v in self.by_team.most_common()],
            "by_source": [{"source": k, "conversations": v} for k, v in self.by_source.most_common()],
            "by_campaign": [{"campaign": k, "conversations": v} for k, v in self.by_campaign.most_common()],
            "cost": [{"currency": k, "amount": str(v)} for k, v in sorted(self.cost.items())],
        }


def summary(session: Session, f: Filters, *, now: datetime) -> dict[str, Any]:
    total = Summary()
    for row in rows(session, f, now=now):
        total.add(row)
    return total.figures()
