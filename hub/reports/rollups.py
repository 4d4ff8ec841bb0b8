"""Keeping the rollups of report_facts: per hour and day (report_rollups,
report_rollup_money), the times' buckets per day (report_buckets) and the times
themselves (report_times).

A fact computed again changes the rollups by its difference: the old row is taken
away, the new one added, both in the transaction that writes the fact and under the
facts' lock (hub.reports.facts), so the sums stay exactly the facts' sums however the
passes, the summary requests and `hub reports rebuild` interleave. The differences
are pure (deltas()); apply() writes them as additive upserts, one per key.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.models import ReportBucket, ReportRollup, ReportRollupMoney, ReportTime
from hub.models.reports import NONE_ID


def _bounds() -> tuple[int, ...]:
    """The buckets' lower bounds in seconds (the last is open): whole seconds about 8%
    apart, so the one bucket a percentile is read from holds few times. They include
    the bounds of the response-time histogram (hub.reports.metrics.BUCKETS), so it is
    a sum of buckets."""
    out, value = {0, 30, 120, 300, 600, 1800, 3600}, 1.0
    while value < 30 * 86400:
        out.add(int(value))
        value = max(value * 1.08, value + 1)
    return tuple(sorted(out))


BOUNDS = _bounds()
METRICS = ("first", "response", "resolution", "wait")
DIMS = ("channel", "team", "assignee", "source")  # the filters a bucket count is kept for, one at a time
ROLLUP_KEY = ("grain", "start", "channel_id", "team_id", "assignee_id", "source", "campaign", "currency")
ROLLUP_SUMS = ("conversations", "closed", "answered", "human_replies", "priced", "cost", "deals", "won", "sla_met",
               "sla_decided")
MONEY_KEY = ("grain", "start", "channel_id", "team_id", "assignee_id", "source", "campaign", "kind", "category",
             "currency")
BUCKET_KEY = ("start", "metric", "bucket", "dim", "value")


def bucket_of(seconds: float) -> int:
    return max(0, bisect_right(BOUNDS, seconds) - 1)


def floor(moment: datetime, grain: str) -> datetime:
    moment = moment.astimezone(timezone.utc)
    if grain == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil(moment: datetime, grain: str) -> datetime:
    low = floor(moment, grain)
    return low if low == moment else low + (timedelta(days=1) if grain == "day" else timedelta(hours=1))


def times_of(fact: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(metric, seconds) of every time a fact holds."""
    out = [(metric, float(fact[column])) for metric, column in
           (("first", "first_response_seconds"), ("resolution", "resolution_seconds"), ("wait", "first_wait_seconds"))
           if fact[column] is not None]
    return out + [("response", float(v)) for v in fact["responses"]]


def _id(value: int | None) -> int:
    return NONE_ID if value is None else value


def _dims(fact: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = [("all", "")]
    for dim, column in (("channel", "channel_id"), ("team", "team_id"), ("assignee", "assignee_id")):
        if fact[column] is not None:
            out.append((dim, str(fact[column])))
    return out + [("source", fact["source"])]


@dataclass
class Deltas:
    """The rollups' differences of facts taken away (-1) and added (+1)."""

    rollups: dict[tuple, dict[str, Any]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    money: dict[tuple, list] = field(default_factory=lambda: defaultdict(lambda: [Decimal(0), 0]))
    buckets: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, fact: Mapping[str, Any], sign: int) -> None:
        ids = (_id(fact["channel_id"]), _id(fact["team_id"]), _id(fact["assignee_id"]), fact["source"],
               fact["campaign"])
        priced = fact["cost"] is not None
        for grain in ("hour", "day"):
            start = floor(fact["opened_at"], grain)
            sums = self.rollups[(grain, start, *ids, fact["currency"])]
            for name, value in (("conversations", 1), ("closed", fact["closed"]),
                                ("answered", fact["first_response_seconds"] is not None),
                                ("human_replies", fact["human_replies"]), ("priced", priced),
                                ("cost", fact["cost"] if priced else 0), ("deals", fact["deals"] > 0),
                                ("won", fact["won"] > 0), ("sla_met", fact["sla"] is True),
                                ("sla_decided", fact["sla"] is not None)):
                sums[name] += sign * value
            amounts = [("cost", key.split("\t", 1)[0][:64], key.split("\t", 1)[1], amount) for key, amount in fact["cost_by_category"].items()
                       if priced]
            if fact["won"] > 0:
                amounts += [("revenue", "", currency, amount) for currency, amount in fact["revenue"].items()]
            for kind, category, currency, amount in amounts:
                entry = self.money[(grain, start, *ids, kind, category, currency)]
                entry[0] += sign * Decimal(amount)
                entry[1] += sign
        day = floor(fact["opened_at"], "day")
        dims = _dims(fact)
        for metric, seconds in times_of(fact):
            b = bucket_of(seconds)
            for dim, value in dims:
                self.buckets[(day, metric, b, dim, value)] += sign


def deltas(removed: Iterable[Mapping[str, Any]], added: Iterable[Mapping[str, Any]]) -> Deltas:
    out = Deltas()
    for fact in removed:
        out.add(fact, -1)
    for fact in added:
        out.add(fact, +1)
    return out


def time_rows(facts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"conversation_id": f["conversation_id"], "metric": metric, "bucket": bucket_of(seconds),
             "seconds": seconds, "opened_at": f["opened_at"], "channel_id": f["channel_id"], "team_id": f["team_id"],
             "assignee_id": f["assignee_id"], "source": f["source"]}
            for f in facts for metric, seconds in times_of(f)]


def _upsert(session: Session, model: Any, key: tuple[str, ...], sums: tuple[str, ...],
            rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = model.__table__
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={name: table.c[name] + statement.excluded[name] for name in sums})
    for i in range(0, len(rows), 1000):
        session.execute(statement, rows[i:i + 1000])


def apply(session: Session, removed: list[Mapping[str, Any]], added: list[Mapping[str, Any]],
          conversation_ids: Iterable[int]) -> None:
    """Write the differences of these facts (removed: as they were; added: as they are
    now) and the conversations' times; rows summed to nothing go."""
    d = deltas(removed, added)
    rollups = [dict(zip(ROLLUP_KEY, k), **{n: v.get(n, 0) for n in ROLLUP_SUMS}) for k, v in d.rollups.items()
               if any(v.values())]
    money = [dict(zip(MONEY_KEY, k), amount=v[0], items=v[1]) for k, v in d.money.items() if v[1] or v[0]]
    buckets = [dict(zip(BUCKET_KEY, k), n=v) for k, v in d.buckets.items() if v]
    _upsert(session, ReportRollup, ROLLUP_KEY, ROLLUP_SUMS, rollups)
    _upsert(session, ReportRollupMoney, MONEY_KEY, ("amount", "items"), money)
    _upsert(session, ReportBucket, BUCKET_KEY, ("n",), buckets)
    # The rows a fact left may have summed to nothing: those go, each by its unique key.
    for model, key, count, gone in (
            (ReportRollup, ROLLUP_KEY, "conversations", [r for r in rollups if r["conversations"] < 0]),
            (ReportRollupMoney, MONEY_KEY, "items", [r for r in money if r["items"] < 0]),
            (ReportBucket, BUCKET_KEY, "n", [r for r in buckets if r["n"] < 0])):
        if gone:
            table = model.__table__
            session.execute(delete(table).where(*[table.c[name] == bindparam(f"k_{name}") for name in key],
                                                table.c[count] == 0),
                            [{f"k_{name}": row[name] for name in key} for row in gone])
    ids = tuple(conversation_ids)
    session.execute(delete(ReportTime).where(ReportTime.conversation_id.in_(ids)))
    times = time_rows(added)
    for i in range(0, len(times), 5000):
        session.execute(ReportTime.__table__.insert(), times[i:i + 5000])


def clear(session: Session) -> None:
    """Everything the rollups hold, before `hub reports rebuild` adds every fact again."""
    for model in (ReportRollup, ReportRollupMoney, ReportBucket, ReportTime):
        session.execute(delete(model))
