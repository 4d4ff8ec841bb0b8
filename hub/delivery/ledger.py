"""Ledger operations on `deliveries`: the only code that changes a delivery's status.

Claiming is serialised per connector (a row lock on the connector on PostgreSQL, the
single writer on SQLite) so that "the head of each conversation" is well defined: a
delivery is claimable only when no earlier delivery of the same ordering key is still
waiting or in someone else's hands. Rows are then leased; a worker that dies simply lets
its lease expire and the rows become claimable again.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from connectors.base import Outcome
from hub.shared.backoff import next_attempt_at
from hub.models import ConnectorRecord, Delivery, Event


@dataclass(frozen=True)
class Policy:
    lease_seconds: float
    max_age_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float

    @classmethod
    def from_config(cls, config: Any) -> "Policy":
        return cls(
            lease_seconds=config.worker.lease_seconds,
            max_age_seconds=config.delivery.max_age_seconds,
            backoff_base_seconds=config.delivery.backoff_base_seconds,
            backoff_max_seconds=config.delivery.backoff_max_seconds,
        )


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event: "ClaimedEvent"
    attempts: int  # attempts made before this one
    created_at: datetime
    ordering_key: str | None
    # Taken over from a worker whose lease lapsed: it may have been half-done.
    reclaimed: bool = False


def _claimable(d: Any, now: datetime) -> Any:
    return or_(
        and_(d.status == "pending", d.next_attempt_at <= now),
        and_(d.status == "leased", d.lease_expires_at <= now),
    )


def _blocking(d: Any, now: datetime) -> Any:
    return or_(
        and_(d.status == "pending", d.next_attempt_at > now),
        and_(d.status == "leased", d.lease_expires_at > now),
    )


def claim(
    session: Session,
    connector_id: int,
    owner: str,
    *,
    now: datetime,
    limit: int,
    lease_seconds: float,
) -> list[Claimed]:
    """Lease up to `limit` deliveries of one connector, oldest first, heads only."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Planned for the queue as it is at each claim: a prepared statement's generic
        # plan (PostgreSQL settles on one after a few executions) cannot see how many
        # rows each status and key has, and once chosen on a growing queue it read it
        # all for every candidate (seconds per claim).
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        # Claimers of one connector take turns; claims are milliseconds long.
        session.execute(
            select(ConnectorRecord.id).where(ConnectorRecord.id == connector_id).with_for_update()
        )
    d = Delivery
    e = aliased(Delivery)
    unfinished = ("pending", "leased")  # spelled out so the partial indexes apply
    # A head: no earlier delivery of its conversation still blocks it. Correlated, so
    # each candidate costs one probe of ix_deliveries_unfinished_key (its conversation's
    # unfinished rows), whatever plan the statistics of the moment suggest; a grouped
    # "first blocker per conversation" join was re-aggregated for every candidate row
    # when the planner guessed a fresh queue was tiny (hundreds of ms per claim).
    earlier_blocker = (
        select(e.id)
        .where(e.connector_id == connector_id, e.ordering_key == d.ordering_key, e.id < d.id,
               e.status.in_(unfinished), _blocking(e, now))
        .exists()
    )
    query = (
        select(d.id)
        .where(d.connector_id == connector_id, d.status.in_(unfinished), _claimable(d, now),
               or_(d.ordering_key.is_(None), ~earlier_blocker))
        .order_by(d.id)
        .limit(limit)
    )
    lease = {"status": "leased", "lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    if postgres:
        # One statement: lock the heads, lease them and read their events. The CTE's
        # status is the one before the lease (a lapsed lease taken over is "leased").
        picked = query.add_columns(d.status.label("was")).with_for_update(skip_locked=True, of=d).cte("picked")
        found = session.execute(
            update(Delivery)
            .where(Delivery.id == picked.c.id, Event.id == Delivery.event_id)
            .values(**lease)
            .returning(Delivery.id, Delivery.attempts, Delivery.created_at, Delivery.ordering_key, picked.c.was,
                       *_EVENT_COLUMNS)
            .execution_options(synchronize_session=False)
        ).all()
        return [_claimed(row) for row in sorted(found, key=lambda r: r[0])]
    found = session.execute(query.add_columns(d.status)).all()
    ids = [row[0] for row in found]
    was = {row[0]: row[1] for row in found}
    if not ids:
        return []
    session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(**lease)
                    .execution_options(synchronize_session=False))
    rows = session.execute(
        select(Delivery.id, Delivery.attempts, Delivery.created_at, Delivery.ordering_key, *_EVENT_COLUMNS)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    return [_claimed((*r[:4], was[r[0]], *r[4:])) for r in rows]


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """The event of a claimed delivery, as read by the claim (no ORM object: a claim of
    hundreds of events would spend more on building them than on the statement)."""

    id: str
    type: str
    version: int
    occurred_at: datetime
    ordering_key: str | None
    data: dict[str, Any]


_EVENT_COLUMNS = (Event.id, Event.type, Event.version, Event.occurred_at, Event.ordering_key, Event.data)


def _claimed(row: Any) -> Claimed:
    delivery_id, attempts, created_at, ordering_key, was = row[:5]
    return Claimed(delivery_id, ClaimedEvent(*row[5:]), attempts, created_at, ordering_key, was == "leased")


def extend_lease(session: Session, ids: Iterable[int], owner: str, *, until: datetime) -> int:
    ids = list(ids)
    if not ids:
        return 0
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.lease_owner == owner, Delivery.status == "leased")
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def _resolve(
    item: Claimed, outcome: Outcome, now: datetime, policy: Policy, rng: random.Random | None
) -> dict[str, Any]:
    """The row values an outcome leads to."""
    common: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if outcome.status == "wait":
        retry = outcome.retry_at or now + timedelta(seconds=policy.backoff_base_seconds)
        return {**common, "status": "pending", "next_attempt_at": max(retry, now),
                "last_error": outcome.error}
    attempted = {
        **common,
        "attempts": item.attempts + 1,
        "last_attempt_at": now,
        "last_error": outcome.error or None,
        "last_response": outcome.response,
    }
    if outcome.status == "done":
        return {**attempted, "status": "done", "finished_at": now, "last_error": None}
    if outcome.status == "dead":
        return {**attempted, "status": "dead", "finished_at": now}
    deadline = item.created_at + timedelta(seconds=policy.max_age_seconds)
    if now >= deadline:
        age = (now - item.created_at).total_seconds()
        return {
            **attempted,
            "status": "dead",
            "finished_at": now,
            "last_error": f"gave up after {item.attempts + 1} attempts over {age:.0f} s "
            f"(max age {policy.max_age_seconds:.0f} s): {outcome.error}",
        }
    when = next_attempt_at(
        now,
        item.attempts + 1,
        base=policy.backoff_base_seconds,
        cap=policy.backoff_max_seconds,
        retry_at=outcome.retry_at,
        rng=rng,
    )
    # One last try at the deadline rather than giving up early.
    return {**attempted, "status": "pending", "next_attempt_at": min(when, deadline)}


_ALL_COLUMNS = (
    "status", "lease_owner", "lease_expires_at", "attempts", "last_attempt_at",
    "last_error", "last_response", "finished_at", "next_attempt_at",
)


def record_outcomes(
    session: Session,
    owner: str,
    results: list[tuple[Claimed, Outcome]],
    *,
    now: datetime,
    policy: Policy,
    rng: random.Random | None = None,
) -> None:
    """Apply outcomes; rows whose lease this worker lost are left to their new owner."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item, outcome in results:
        values = _resolve(item, outcome, now, policy, rng)
        groups.setdefault(tuple(sorted(values)), []).append({"b_id": item.delivery_id, **values})
    table = Delivery.__table__
    for columns, params in groups.items():
        statement = (
            table.update()
            .where(table.c.id == bindparam("b_id"), table.c.lease_owner == owner,
                   table.c.status == "leased")
            .values({c: bindparam(c) for c in columns})
        )
        session.execute(statement, params)


def release(session: Session, owner: str, ids: Iterable[int], *, now: datetime) -> None:
    """Hand back leased rows untried (their conversation's earlier event is retrying)."""
    ids = list(ids)
    if not ids:
        return
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.lease_owner == owner, Delivery.status == "leased")
        .values(status="pending", lease_owner=None, lease_expires_at=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def replay(
    session: Session,
    *,
    now: datetime,
    ids: Iterable[int] | None = None,
    connector_id: int | None = None,
) -> int:
    """Put dead letters back in the queue with a fresh max-age window."""
    conditions = [Delivery.status == "dead"]
    if ids is not None:
        conditions.append(Delivery.id.in_(list(ids)))
    if connector_id is not None:
        conditions.append(Delivery.connector_id == connector_id)
    result = session.execute(
        update(Delivery)
        .where(*conditions)
        .values(status="pending", next_attempt_at=now, created_at=now, finished_at=None,
                attempts=0)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
