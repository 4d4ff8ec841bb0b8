"""The period's summary added up from report_facts (hub.reports.facts) instead of the
conversations' messages: the same figures as hub.reports.rows.summary, from GROUP BY
over one row per conversation. Counts and sums are grouped in SQL on both databases;
medians and percentiles are computed by PostgreSQL (percentile_cont is the median's
mean of the two middles, percentile_disc the nearest rank) and in Python on SQLite.
Missed chats still waiting are decided against `now` and the team's hours here, the
only figure that moves with time alone.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, case, cast, func, select, text
from sqlalchemy.orm import Session

from hub.models import Channel, ReportFact, Team, User
from hub.reports import metrics
from hub.reports.rows import Filters, Summary, _clock

F = ReportFact


def _where(f: Filters) -> list[Any]:
    out = [F.opened_at >= f.start, F.opened_at < f.end]
    for column, value in ((F.channel_id, f.channel_id), (F.team_id, f.team_id), (F.assignee_id, f.assignee_id),
                          (F.source, f.source)):
        if value is not None:
            out.append(column == value)
    return out


def _seconds(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "median": metrics.median(values), "p90": metrics.percentile(values, 0.9)}


def _percentiles_postgres(session: Session, where: list[Any]) -> tuple[dict, dict, dict, dict[str, int]]:
    """Two scans: the conversations' first response and resolution, then every response
    time (unnest of the float8[] column) with its histogram."""
    def trio(column: Any) -> list[Any]:
        return [func.count(column), func.percentile_cont(0.5).within_group(column),
                func.percentile_disc(0.9).within_group(column)]

    row = session.execute(select(*trio(F.first_response_seconds), *trio(F.resolution_seconds)).where(*where)).one()
    first = {"count": row[0], "median": row[1], "p90": row[2]}
    resolution = {"count": row[3], "median": row[4], "p90": row[5]}
    value = func.unnest(F.responses).table_valued("seconds").render_derived()
    seconds = value.c.seconds
    bounds = [bound for bound, _label in metrics.BUCKETS]
    buckets = [func.count().filter(seconds < bound if low is None else (seconds >= low) & (seconds < bound))
               if bound is not None else func.count().filter(seconds >= low)
               for low, bound in zip([None] + bounds[:-1], bounds)]
    row = session.execute(select(*trio(seconds), *buckets).select_from(F.__table__.join(value, text("true")))
                          .where(*where)).one()
    response = {"count": row[0], "median": row[1], "p90": row[2]}
    histogram = {label: n for (_bound, label), n in zip(metrics.BUCKETS, row[3:])}
    return first, response, resolution, histogram


def _percentiles_python(session: Session, where: list[Any]) -> tuple[dict, dict, dict, dict[str, int]]:
    first, resolution, response = [], [], []
    for fr, res, responses in session.execute(
            select(F.first_response_seconds, F.resolution_seconds, F.responses).where(*where)):
        if fr is not None:
            first.append(fr)
        if res is not None:
            resolution.append(res)
        response.extend(responses)
    return _seconds(first), _seconds(response), _seconds(resolution), metrics.histogram(response)


def _cost_by_category(session: Session, where: list[Any], postgres: bool) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    if postgres:
        pair = func.jsonb_each_text(F.cost_by_category).table_valued("key", "value").render_derived()
        found = session.execute(select(pair.c.key, func.sum(cast(pair.c.value, Numeric)))
                                .select_from(F.__table__.join(pair, text("true")))
                                .where(*where, F.cost.is_not(None)).group_by(pair.c.key))
        for key, amount in found:
            out[tuple(key.split("\t", 1))] += Decimal(amount)
        return out
    for categories, in session.execute(select(F.cost_by_category).where(*where, F.cost.is_not(None))):
        for key, amount in categories.items():
            out[tuple(key.split("\t", 1))] += Decimal(amount)
    return out


def summary(session: Session, f: Filters, *, now: datetime) -> dict[str, Any]:
    """The figures of rows.summary(session, f, now=now), from the facts."""
    where = _where(f)
    postgres = session.get_bind().dialect.name == "postgresql"
    users = {u.id: u.email for u in session.scalars(select(User))}
    teams = {t.id: t for t in session.scalars(select(Team))}
    channels = {c.id: c.name for c in session.scalars(select(Channel))}
    total = Summary()
    missed = 0
    grouped = session.execute(
        select(F.assignee_id, F.team_id, F.source, F.campaign, F.channel_id, F.currency, func.count(),
               func.sum(case((F.closed.is_(True), 1), else_=0)), func.count(F.first_response_seconds),
               func.sum(F.human_replies), func.sum(F.cost), func.sum(case((F.deals > 0, 1), else_=0)),
               func.sum(case((F.won > 0, 1), else_=0)), func.sum(case((F.sla.is_(True), 1), else_=0)),
               func.count(F.sla), func.sum(case((F.first_wait_seconds > f.missed_seconds, 1), else_=0)))
        .where(*where).group_by(F.assignee_id, F.team_id, F.source, F.campaign, F.channel_id, F.currency))
    for (assignee, team_id, source, campaign, channel_id, currency, n, closed, answered, replies, cost, deals, won,
         met, decided, late) in grouped:
        operator = users.get(assignee) or "(unassigned)"
        team = teams[team_id].name if team_id in teams else "(no team)"
        total.conversations += n
        total.closed += int(closed or 0)
        total.answered += answered
        missed += int(late or 0)
        total.by_operator[operator] += n
        total.replies_by_operator[operator] += int(replies or 0)
        total.by_team[team] += n
        groups = [total.leads, total.by_source[source]] + ([total.by_campaign[campaign]] if campaign else [])
        for lead in groups:
            lead.conversations += n
            lead.deals += int(deals or 0)
            lead.won += int(won or 0)
            if cost is not None:
                lead.cost[currency or "?"] += Decimal(cost)
        for sla in (total.sla, total.sla_by_team[team], total.sla_by_operator[operator]):
            sla.met += int(met or 0)
            sla.decided += decided
        if cost is not None:
            total.cost[currency or "?"] += Decimal(cost)
            total.cost_by_channel[(channels.get(channel_id, ""), currency or "?")] += Decimal(cost)
    for source, campaign, revenue in session.execute(select(F.source, F.campaign, F.revenue)
                                                     .where(*where, F.won > 0)):
        for lead in [total.leads, total.by_source[source]] + ([total.by_campaign[campaign]] if campaign else []):
            for currency, amount in revenue.items():
                lead.revenue[currency] += Decimal(amount)
    for team_id, asked in session.execute(select(F.team_id, F.first_inbound_at).where(
            *where, F.first_inbound_at.is_not(None), F.first_wait_seconds.is_(None))):
        missed += _clock(teams.get(team_id)).between(asked, now) > f.missed_seconds
    total.missed = missed
    total.cost_by_category = _cost_by_category(session, where, postgres)
    first, response, resolution, histogram = (_percentiles_postgres if postgres else _percentiles_python)(
        session, where)
    figures = total.figures()
    figures.update(first_response_seconds=first, response_seconds=response, resolution_seconds=resolution,
                   response_histogram=histogram)
    for key, name in (("by_operator", "operator"), ("by_team", "team")):
        figures[key].sort(key=lambda entry: (-entry["conversations"], entry[name]))
    return figures

