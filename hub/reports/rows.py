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
from hub.reports import deals as report_deals, metrics
from hub.routing.sla import Beat
from hub.tracking.costs import romi

BATCH = 500
COLUMNS = ("conversation_id", "channel", "contact_name", "contact_phone", "operator", "team", "status",
           "opened_at", "closed_at", "first_response_seconds", "resolution_seconds", "missed", "messages_in",
           "messages_out", "human_replies", "lead_kind", "utm_source", "utm_medium", "utm_campaign", "cost",
           "currency", "sla_met", "deal_id", "deal_stage", "deal_outcome", "deal_amount", "deal_currency")


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    channel_id: int | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    missed_seconds: float = 15 * 60
    source: str | None = None  # as counted in by_source: UTM source, else lead kind, else (direct)
    conversation_ids: tuple[int, ...] | None = None  # these conversations, whatever the period (hub.reports.facts)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _clock(team: Team | None) -> metrics.Clock:
    if team is None or not (team.hours or team.holidays):
        return metrics.ALWAYS
    return metrics.Clock(team.hours or {}, tuple(team.holidays or ()), team.time_zone)


def _query(f: Filters) -> Any:
    if f.conversation_ids is not None:
        return select(Conversation).where(Conversation.id.in_(f.conversation_ids)).order_by(Conversation.id)
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
        by_category: dict[int, Counter] = defaultdict(Counter)  # (category, currency) -> amount
        for cid, at, direction, author, price, cur, kind, category in session.execute(
                select(Message.conversation_id, Message.sent_at, Message.direction, Message.author_id, Message.cost,
                       Message.currency, Message.type, Message.pricing_category)
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
                by_category[cid][(category or "(none)", cur or "?")] += price
        deals = report_deals.of_conversations(session, ids)
        for c in batch:
            team = teams.get(c.team_id)
            clock = _clock(team)
            contact = contacts.get(c.contact_id)
            source = c.lead_source or {}
            first = metrics.first_response_seconds(beats[c.id], clock)
            resolution = metrics.resolution_seconds(c.opened_at, c.closed_at, clock)
            lead_kind = "ad" if source.get("referral") else (source.get("kind") or "")
            if f.source is not None and (source.get("utm_source") or lead_kind or "(direct)") != f.source:
                continue
            sla = metrics.sla_met(team.sla or {}, beats[c.id], closed_at=c.closed_at, now=now, clock=clock) \
                if team is not None else None
            deal = deals.get(c.id) or report_deals.ConversationDeals()
            asked = metrics.first_customer_message(beats[c.id])
            reply = min((b.at for b in beats[c.id] if b.human and asked is not None and b.at >= asked), default=None)
            latest = deal.latest
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
                "lead_kind": lead_kind,
                "utm_source": source.get("utm_source") or "", "utm_medium": source.get("utm_medium") or "",
                "utm_campaign": source.get("utm_campaign") or "",
                "cost": str(cost[c.id]) if c.id in cost else "", "currency": currency.get(c.id, ""),
                "sla_met": "" if sla is None else sla, "deal_id": latest.deal_id if latest else "",
                "deal_stage": latest.stage if latest else "", "deal_outcome": latest.outcome if latest else "",
                "deal_amount": str(latest.amount) if latest and latest.amount is not None else "",
                "deal_currency": (latest.currency or "") if latest else "",
                "_first_inbound_at": asked, "_first_wait": clock.between(asked, reply) if reply else None,
                "_deals": deal, "_cost_by_category": by_category[c.id], "_sla": sla, "_channel_id": c.channel_id,
                "_responses": metrics.response_seconds(beats[c.id], clock), "_team_id": c.team_id,
                "_assignee_id": c.assignee_id,
            }


def source_of(row: dict[str, Any]) -> str:
    """The source a row is counted under in `by_source` (docs/metrics.md)."""
    return row["utm_source"] or row["lead_kind"] or "(direct)"


def _money(amounts: dict[str, Decimal]) -> list[dict[str, str]]:
    return [{"currency": k, "amount": str(v)} for k, v in sorted(amounts.items())]


def _each(amount: Decimal, n: int) -> str | None:
    """`amount` shared by `n` (cost per lead, per won deal); None when there is none to share it."""
    return str(round(amount / n, 6)) if n else None


def _shared(amounts: dict[str, Decimal], n: int) -> list[dict[str, str]]:
    return [{"currency": k, "amount": _each(v, n)} for k, v in sorted(amounts.items())] if n else []


@dataclass
class Lead:
    """A lead source's (or campaign's) way to the money: conversations, deals, won deals,
    revenue and what its messages cost, per currency."""

    conversations: int = 0
    deals: int = 0
    won: int = 0
    revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    cost: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, row: dict[str, Any]) -> None:
        deal = row["_deals"]
        self.conversations += 1
        self.deals += deal.deals > 0
        self.won += deal.won > 0
        for currency, amount in deal.revenue.items():
            self.revenue[currency] += amount
        if row["cost"]:
            self.cost[row["currency"] or "?"] += Decimal(row["cost"])

    def figures(self) -> dict[str, Any]:
        """With what a lead and a won deal cost (empty where nothing divides) and ROMI
        (null unless cost and revenue are in one and the same currency)."""
        return {"conversations": self.conversations, "deals": self.deals, "won": self.won,
                "revenue": _money(self.revenue), "cost": _money(self.cost),
                "cost_per_lead": _shared(self.cost, self.conversations),
                "cost_per_won_deal": _shared(self.cost, self.won),
                "romi": romi(self.cost, self.revenue)}


@dataclass
class Sla:
    met: int = 0
    decided: int = 0

    def add(self, verdict: bool | None) -> None:
        if verdict is not None:
            self.decided += 1
            self.met += verdict

    def figures(self) -> dict[str, Any]:
        return {"met": self.met, "decided": self.decided, "percent": metrics.share(self.met, self.decided)}


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
    sla: Sla = field(default_factory=Sla)
    sla_by_team: dict[str, Sla] = field(default_factory=lambda: defaultdict(Sla))
    sla_by_operator: dict[str, Sla] = field(default_factory=lambda: defaultdict(Sla))
    leads: Lead = field(default_factory=Lead)
    by_source: dict[str, Lead] = field(default_factory=lambda: defaultdict(Lead))
    by_campaign: dict[str, Lead] = field(default_factory=lambda: defaultdict(Lead))
    cost: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    cost_by_category: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    cost_by_channel: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

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
        operator, team = row["operator"] or "(unassigned)", row["team"] or "(no team)"
        self.by_operator[operator] += 1
        self.replies_by_operator[operator] += row["human_replies"]
        self.by_team[team] += 1
        for sla in (self.sla, self.sla_by_team[team], self.sla_by_operator[operator]):
            sla.add(row["_sla"])
        self.leads.add(row)
        self.by_source[source_of(row)].add(row)
        if row["utm_campaign"]:
            self.by_campaign[row["utm_campaign"]].add(row)
        if row["cost"]:
            self.cost[row["currency"] or "?"] += Decimal(row["cost"])
            self.cost_by_channel[(row["channel"], row["currency"] or "?")] += Decimal(row["cost"])
        for key, amount in row["_cost_by_category"].items():
            self.cost_by_category[key] += amount

    def _cost(self) -> list[dict[str, Any]]:
        """Per currency: the sum, per conversation (cost per lead) and per won deal."""
        out = []
        for currency, amount in sorted(self.cost.items()):
            won = self.leads.won
            out.append({"currency": currency, "amount": str(amount),
                        "per_conversation": _each(amount, self.conversations), "per_won_deal": _each(amount, won)})
        return out

    def figures(self) -> dict[str, Any]:
        def seconds(values: list[float]) -> dict[str, Any]:
            return {"count": len(values), "median": metrics.median(values), "p90": metrics.percentile(values, 0.9)}

        def ranked(groups: dict[str, Lead], name: str) -> list[dict[str, Any]]:
            return [{name: k, **v.figures()} for k, v in sorted(groups.items(),
                                                                key=lambda kv: (-kv[1].conversations, kv[0]))]

        revenue = _money(self.leads.revenue)
        return {
            "conversations": self.conversations, "closed": self.closed, "answered": self.answered,
            "missed": self.missed, "first_response_seconds": seconds(self.first_response),
            "response_seconds": seconds(self.response), "resolution_seconds": seconds(self.resolution),
            "response_histogram": metrics.histogram(self.response),
            "first_response_histogram": metrics.histogram(self.first_response),
            "sla": self.sla.figures(),
            "deals": self.leads.deals, "won": self.leads.won, "revenue": revenue,
            "funnel": [{"stage": "started", "conversations": self.conversations},
                       {"stage": "answered", "conversations": self.answered},
                       {"stage": "deal", "conversations": self.leads.deals},
                       {"stage": "won", "conversations": self.leads.won}],
            "by_operator": [{"operator": k, "conversations": v, "replies": self.replies_by_operator[k],
                             "sla": self.sla_by_operator[k].figures()} for k, v in self.by_operator.most_common()],
            "by_team": [{"team": k, "conversations": v, "sla": self.sla_by_team[k].figures()}
                        for k, v in self.by_team.most_common()],
            "by_source": ranked(self.by_source, "source"),
            "by_campaign": ranked(self.by_campaign, "campaign"),
            "cost": self._cost(), "romi": romi(self.cost, self.leads.revenue),
            "cost_by_category": [{"category": k[0], "currency": k[1], "amount": str(v)}
                                 for k, v in sorted(self.cost_by_category.items())],
            "cost_by_channel": [{"channel": k[0], "currency": k[1], "amount": str(v)}
                                for k, v in sorted(self.cost_by_channel.items())],
        }


def summary(session: Session, f: Filters, *, now: datetime) -> dict[str, Any]:
    total = Summary()
    for row in rows(session, f, now=now):
        total.add(row)
    return total.figures()
