"""The period's summary from the rollups (hub.reports.rollups) instead of the
conversations' messages: the same figures as hub.reports.rows.summary.

A period is cut into whole UTC days, whole hours at its edges and the minutes left
(hub.reports.spans): counts and sums come from the day and hour rollups, the minutes
left from report_facts. A percentile is found in the day buckets of its times (with
report_times for the edges, or for all of it under two filters or more, which the
buckets are not kept for), then its exact value is read from report_times in that
one bucket; the median is the mean of the two middle values, p90 the nearest rank,
as in hub.reports.metrics. Missed chats: the answered ones by their first wait (the
same two steps), those still waiting decided against `now` and the team's hours.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import Session

from hub.models import Channel, ReportBucket, ReportFact, ReportRollup, ReportRollupMoney, ReportTime, Team, User
from hub.reports import metrics
from hub.reports.grouping import slot_of, slots
from hub.reports.rollups import BOUNDS, bucket_of, ceil, floor
from hub.reports.rows import Filters, Summary, _clock
from hub.reports.spans import Range, Spans, split

F, R, M, B, T = ReportFact, ReportRollup, ReportRollupMoney, ReportBucket, ReportTime
# The scale of each amount where it comes from (messages.cost, report_deals.amount).
CENTS = {"cost": Decimal("0.000001"), "revenue": Decimal("0.01")}
WHOLE = frozenset({"first", "resolution"})  # kept in whole seconds


def _in(column: Any, ranges: list[Range]) -> Any:
    return or_(*[and_(column >= a, column < b) for a, b in ranges]) if ranges else false()


def _filters(f: Filters, model: Any) -> list[Any]:
    return [getattr(model, column) == value for column, value in (
        ("channel_id", f.channel_id), ("team_id", f.team_id), ("assignee_id", f.assignee_id), ("source", f.source))
        if value is not None]


def _units(model: Any, s: Spans) -> Any:
    return or_(and_(model.grain == "day", _in(model.start, s.days)),
               and_(model.grain == "hour", _in(model.start, s.hours)))


def _grouped(session: Session, f: Filters, s: Spans) -> list[tuple]:
    """(assignee, team, source, campaign, channel, currency, conversations, closed,
    answered, replies, cost, priced, deals, won, sla met, sla decided) per key."""
    out: list[tuple] = []
    if s.days or s.hours:
        sums = [func.sum(getattr(R, name)) for name in ("conversations", "closed", "answered", "human_replies", "cost",
                                                        "priced", "deals", "won", "sla_met", "sla_decided")]
        keys = (R.assignee_id, R.team_id, R.source, R.campaign, R.channel_id, R.currency)
        out += session.execute(select(*keys, *sums).where(_units(R, s), *_filters(f, R)).group_by(*keys)).all()
    if s.rest:
        keys = (F.assignee_id, F.team_id, F.source, F.campaign, F.channel_id, F.currency)
        out += session.execute(
            select(*keys, func.count(), func.sum(case((F.closed.is_(True), 1), else_=0)),
                   func.count(F.first_response_seconds), func.sum(F.human_replies), func.sum(F.cost),
                   func.count(F.cost), func.sum(case((F.deals > 0, 1), else_=0)),
                   func.sum(case((F.won > 0, 1), else_=0)), func.sum(case((F.sla.is_(True), 1), else_=0)),
                   func.count(F.sla))
            .where(_in(F.opened_at, s.rest), *_filters(f, F)).group_by(*keys)).all()
    return out


def _money(session: Session, f: Filters, s: Spans) -> list[tuple[str, str, str, str, str, Decimal]]:
    """(kind, category, currency, source, campaign, amount): costs per pricing category
    and the revenue of won deals."""
    out = []
    if s.days or s.hours:
        keys = (M.kind, M.category, M.currency, M.source, M.campaign)
        for *key, amount in session.execute(select(*keys, func.sum(M.amount)).where(_units(M, s), *_filters(f, M))
                                            .group_by(*keys)):
            out.append((*key, Decimal(amount)))
    if s.rest:
        for source, campaign, cost, by_category, won, revenue in session.execute(
                select(F.source, F.campaign, F.cost, F.cost_by_category, F.won, F.revenue)
                .where(_in(F.opened_at, s.rest), *_filters(f, F), or_(F.cost.is_not(None), F.won > 0))):
            if cost is not None:
                for key, amount in by_category.items():
                    category, currency = key.split("\t", 1)
                    out.append(("cost", category, currency, source, campaign, Decimal(amount)))
            if won > 0:
                out += [("revenue", "", currency, source, campaign, Decimal(amount))
                        for currency, amount in revenue.items()]
    return out


def _one_dim(f: Filters) -> tuple[str, str] | None:
    """The bucket counts' (dim, value) for these filters; None under two or more."""
    chosen = [(dim, str(value)) for dim, value in (("channel", f.channel_id), ("team", f.team_id),
                                                   ("assignee", f.assignee_id), ("source", f.source))
              if value is not None]
    if len(chosen) > 1:
        return None
    return chosen[0] if chosen else ("all", "")


def _counts(session: Session, f: Filters, s: Spans) -> dict[str, Counter]:
    """Per metric: how many times fell in each bucket."""
    out: dict[str, Counter] = defaultdict(Counter)
    dim = _one_dim(f)
    from_times = s.not_days if dim is not None else [(f.start, f.end)]
    if dim is not None and s.days:
        for metric, bucket, n in session.execute(
                select(B.metric, B.bucket, func.sum(B.n)).where(_in(B.start, s.days), B.dim == dim[0],
                                                                B.value == dim[1]).group_by(B.metric, B.bucket)):
            out[metric][bucket] += int(n)
    if from_times:
        for metric, bucket, n in session.execute(
                select(T.metric, T.bucket, func.count()).where(_in(T.opened_at, from_times), *_filters(f, T))
                .group_by(T.metric, T.bucket)):
            out[metric][bucket] += n
    return out


def _in_bucket(f: Filters, metric: str, bucket: int) -> list[Any]:
    return [T.metric == metric, T.bucket == bucket, T.opened_at >= f.start, T.opened_at < f.end, *_filters(f, T)]


def _at_ranks(session: Session, f: Filters, metric: str, counts: Counter, ranks: list[int]) -> dict[int, float]:
    """The values at these ranks (1 = the smallest), each read in its bucket."""
    wanted: dict[int, list[tuple[int, int]]] = defaultdict(list)  # bucket -> (rank, offset in it)
    for rank in ranks:
        below = 0
        for bucket, n in sorted(counts.items()):
            if rank <= below + n:
                wanted[bucket].append((rank, rank - below - 1))
                break
            below += n
    out = {}
    for bucket, places in wanted.items():
        first = min(offset for _rank, offset in places)
        last = max(offset for _rank, offset in places)
        values = list(session.scalars(select(T.seconds).where(*_in_bucket(f, metric, bucket))
                                      .order_by(T.seconds).offset(first).limit(last - first + 1)))
        for rank, offset in places:
            value = values[offset - first]
            out[rank] = int(value) if metric in WHOLE else value
    return out


def _seconds(session: Session, f: Filters, metric: str, counts: Counter) -> dict[str, Any]:
    n = sum(counts.values())
    if not n:
        return {"count": 0, "median": None, "p90": None}
    middle = [(n + 1) // 2] if n % 2 else [n // 2, n // 2 + 1]
    p90 = int(max(1, -(-n * 0.9 // 1)))  # nearest rank, as metrics.percentile
    values = _at_ranks(session, f, metric, counts, middle + [p90])
    median = values[middle[0]] if n % 2 else (values[middle[0]] + values[middle[1]]) / 2
    return {"count": n, "median": median, "p90": values[p90]}


def _histogram(counts: Counter) -> dict[str, int]:
    out = {label: 0 for _bound, label in metrics.BUCKETS}
    for bucket, n in counts.items():
        out[metrics.bucket(BOUNDS[bucket])] += n
    return out


def _late(session: Session, f: Filters, waits: Counter) -> int:
    """Answered conversations whose first wait was longer than the missed limit."""
    limit = f.missed_seconds
    edge = bucket_of(limit)
    above = sum(n for bucket, n in waits.items() if bucket > edge)
    if not waits.get(edge):
        return above
    return above + session.scalar(select(func.count()).where(*_in_bucket(f, "wait", edge), T.seconds > limit))


def _waiting_missed(session: Session, f: Filters, teams: dict[int, Team], now: datetime) -> int:
    """Conversations still waiting for their first human reply, missed by `now`."""
    waiting = [F.opened_at >= f.start, F.opened_at < f.end, F.first_inbound_at.is_not(None),
               F.first_wait_seconds.is_(None), *_filters(f, F)]
    clocked = [tid for tid, team in teams.items() if team.hours or team.holidays]
    wall = session.scalar(select(func.count()).where(
        *waiting, or_(F.team_id.is_(None), F.team_id.notin_(clocked)),
        F.first_inbound_at < now - timedelta(seconds=f.missed_seconds)))
    if not clocked:
        return wall
    return wall + sum(_clock(teams[team_id]).between(asked, now) > f.missed_seconds
                      for team_id, asked in session.execute(select(F.team_id, F.first_inbound_at)
                                                            .where(*waiting, F.team_id.in_(clocked))))


def summary(session: Session, f: Filters, *, now: datetime) -> dict[str, Any]:
    """The figures of rows.summary(session, f, now=now), from the rollups."""
    s = split(f.start, f.end)
    users = {u.id: u.email for u in session.scalars(select(User))}
    teams = {t.id: t for t in session.scalars(select(Team))}
    channels = {c.id: c.name for c in session.scalars(select(Channel))}
    total = Summary()
    for (assignee, team_id, source, campaign, channel_id, currency, n, closed, answered, replies, cost, priced,
         deals, won, met, decided) in _grouped(session, f, s):
        operator = users.get(assignee) or "(unassigned)"
        team = teams[team_id].name if team_id in teams else "(no team)"
        total.conversations += n
        total.closed += int(closed or 0)
        total.answered += int(answered or 0)
        total.by_operator[operator] += n
        total.replies_by_operator[operator] += int(replies or 0)
        total.by_team[team] += n
        priced = int(priced or 0) > 0
        for lead in [total.leads, total.by_source[source]] + ([total.by_campaign[campaign]] if campaign else []):
            lead.conversations += n
            lead.deals += int(deals or 0)
            lead.won += int(won or 0)
            if priced:
                lead.cost[currency or "?"] += Decimal(cost)
        for sla in (total.sla, total.sla_by_team[team], total.sla_by_operator[operator]):
            sla.met += int(met or 0)
            sla.decided += int(decided or 0)
        if priced:
            total.cost[currency or "?"] += Decimal(cost)
            total.cost_by_channel[(channels.get(channel_id, ""), currency or "?")] += Decimal(cost)
    for kind, category, currency, source, campaign, amount in _money(session, f, s):
        amount = amount.quantize(CENTS[kind])
        if kind == "cost":
            total.cost_by_category[(category, currency)] += amount
            continue
        for lead in [total.leads, total.by_source[source]] + ([total.by_campaign[campaign]] if campaign else []):
            lead.revenue[currency] += amount
    counts = _counts(session, f, s)
    total.missed = _late(session, f, counts["wait"]) + _waiting_missed(session, f, teams, now)
    figures = total.figures()
    figures.update(first_response_seconds=_seconds(session, f, "first", counts["first"]),
                   response_seconds=_seconds(session, f, "response", counts["response"]),
                   resolution_seconds=_seconds(session, f, "resolution", counts["resolution"]),
                   response_histogram=_histogram(counts["response"]),
                   first_response_histogram=_histogram(counts["first"]))
    for key, name in (("by_operator", "operator"), ("by_team", "team")):
        figures[key].sort(key=lambda entry: (-entry["conversations"], entry[name]))
    return figures


def per_slot(session: Session, f: Filters) -> list[tuple[datetime, int]]:
    """(slot start, conversations opened in it) for every chart slot of the period
    (hub.reports.grouping.slots): the whole UTC hours that lie in one slot from the hour
    rollups, the rest (the edges, and hours a slot boundary cuts, as in a time zone half
    an hour off UTC) from the facts."""
    every, step = slots(f.start, f.end)
    counts: Counter = Counter()
    low, high = ceil(f.start, "hour"), floor(f.end, "hour")
    cut = {floor(at, "hour") for at in every[1:] if floor(at, "hour") != at}
    if low >= high:
        from_facts = [(f.start, f.end)] if f.start < f.end else []
    else:
        from_facts = [r for r in ((f.start, low), (high, f.end)) if r[0] < r[1]]
        from_facts += [(hour, hour + timedelta(hours=1)) for hour in sorted(cut) if low <= hour < high]
        for start, n in session.execute(
                select(R.start, func.sum(R.conversations)).where(R.grain == "hour", R.start >= low, R.start < high,
                                                                 *_filters(f, R)).group_by(R.start)):
            if start not in cut:
                counts[slot_of(f.start, step, start)] += int(n)
    if from_facts:
        for (opened,) in session.execute(select(F.opened_at).where(_in(F.opened_at, from_facts), *_filters(f, F))):
            counts[slot_of(f.start, step, opened)] += 1
    return [(at, counts[at]) for at in every]
