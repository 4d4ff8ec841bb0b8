"""Domain events and emit(): the transactional outbox.

emit() writes the event and one delivery row per subscribed connector in the caller's
transaction, so an event exists if and only if the change that caused it committed.
"""
from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from connectors.base import registry
from hub.models import ConnectorRecord, Delivery, Event
from hub.events.person_identity import with_person

EVENT_TYPES = (
    "message.received",
    "message.sent",
    "message.status",
    "conversation.started",
    "conversation.assigned",
    "conversation.closed",
    "lead.attributed",
    "contact.opted_out",
    "contact.updated",
    "contact.linked",
    "contact.unlinked",
    "template.status_changed",
    "channel.quality_changed",
    "report.ready",
    "conversation.queued",
    "conversation.transferred",
    "sla.warning",
    "sla.breached",
    "deal.stage_changed",
    "broadcast.recipient",
    "broadcast.paused",
    "automation.step",
)

EVENT_VERSION = 1


class UnknownEventType(ValueError):
    pass


def subscribes(kind: str, event_types: list[str] | None, type_: str) -> bool:
    """Does a connector of `kind` with this filter receive events of `type_`?"""
    cls = registry.find(kind)
    handles = cls.handles if cls is not None else None
    if handles is not None and type_ not in handles:
        return False
    return event_types is None or type_ in event_types


_connectors = ConnectorRecord.__table__
_events = Event.__table__
_ENABLED_CONNECTORS = select(_connectors.c.id, _connectors.c.kind, _connectors.c.event_types).where(
    _connectors.c.enabled.is_(True))
_INSERT_EVENT = insert(_events)
# PostgreSQL: the first event of a transaction is written in the round trip that reads
# the subscribers, as a data-modifying CTE of that SELECT (PostgreSQL runs it whether or
# not the SELECT reads its output). One round trip fewer on every webhook.
_INSERT_EVENT_READING_CONNECTORS = _ENABLED_CONNECTORS.add_cte(insert(_events).values(
    {name: bindparam(name, type_=_events.c[name].type) for name in
     ("id", "type", "version", "occurred_at", "ordering_key", "data", "created_at")}).cte("new_event"))
_INSERT_DELIVERIES = insert(Delivery.__table__)
_SUBSCRIBERS = "hub.subscribers"  # session.info key: enabled connectors, read once per transaction


def _insert_event(session: Session, row: dict[str, Any]) -> list[tuple[int, str, list[str] | None]]:
    """INSERT the event; returns the enabled connectors, read with the transaction's first
    event (a webhook often emits three)."""
    subscribers = session.info.get(_SUBSCRIBERS)
    if subscribers is not None:
        session.execute(_INSERT_EVENT, row)
    elif session.get_bind().dialect.name == "postgresql":
        subscribers = session.execute(_INSERT_EVENT_READING_CONNECTORS, row).all()
    else:
        with session.no_autoflush:  # pending rows are not read here; flush once, at commit
            subscribers = session.execute(_ENABLED_CONNECTORS).all()
        session.execute(_INSERT_EVENT, row)
    session.info[_SUBSCRIBERS] = subscribers
    return subscribers


def is_first_event(session: Session) -> bool:
    """Has this transaction emitted no event yet (so the next one reads the subscribers)?"""
    return _SUBSCRIBERS not in session.info


def known_subscribers(session: Session, type_: str) -> list[int] | None:
    """The ids of the enabled connectors that receive events of `type_`, when this
    transaction has read the connectors already (an earlier event); None before that.
    A caller whose own statement writes the event can write its deliveries in it too."""
    subscribers = session.info.get(_SUBSCRIBERS)
    if subscribers is None:
        return None
    return [connector_id for connector_id, kind, event_types in subscribers
            if subscribes(kind, event_types, type_)]


def emit_riding(session: Session, type_: str, data: dict[str, Any], *, now: datetime,
                ordering_key: str | None = None, with_ctes: tuple[Any, ...] = (),
                params: dict[str, Any] | None = None, before: tuple[tuple[str, dict[str, Any]], ...] = ()) -> str:
    """emit() of a transaction's first event on PostgreSQL, with the caller's own
    data-modifying statements (`with_ctes`, their parameters in `params`, none named like
    an events column) as CTEs of the same round trip. Ingest writes a message and its
    message.received event this way: one round trip instead of two. `before`: events
    (type, data) emitted ahead of this one in the same round trip, with the same
    ordering key (a new conversation's conversation.started and lead.attributed).
    Returns the event's id (no Event object: this is every webhook's hot path)."""
    if not is_first_event(session):
        raise RuntimeError("emit_riding() writes only the first event of a transaction")
    rows = [_row(session, t, d, now=now, ordering_key=ordering_key) for t, d in (*before, (type_, data))]
    statement = _riding_statement(tuple(with_ctes), len(rows))
    values = dict(params or {})
    for i, row in enumerate(rows):
        values.update({f"{_event_prefix(i)}{k}": v for k, v in row.items()})
    subscribers = session.execute(statement, values).all()
    session.info[_SUBSCRIBERS] = subscribers
    _insert_deliveries(session, rows, subscribers, now=now)
    return rows[-1]["id"]


_EVENT_COLUMNS = ("id", "type", "version", "occurred_at", "ordering_key", "data", "created_at")


def _event_prefix(i: int) -> str:
    return "event_" if i == 0 else f"event{i}_"


@functools.lru_cache(maxsize=64)
def _riding_statement(writes: tuple[Any, ...], events: int = 1) -> Any:
    """The subscribers' SELECT with one single-row INSERT per event (a multi-row VALUES
    has no cache key, so it would be compiled again on every webhook) and `writes` as
    CTEs. The events' order is their deliveries' order, written after. Every parameter has a prefixed name (event_<column>,
    event1_<column>, ...): in a statement of several tables, SQLAlchemy would give a
    parameter named like a column to that column of each table."""
    statement = _ENABLED_CONNECTORS
    for i in range(events):
        statement = statement.add_cte(insert(_events).values(
            {name: bindparam(f"{_event_prefix(i)}{name}", type_=_events.c[name].type)
             for name in _EVENT_COLUMNS}).cte(f"new_event_{i}"))
    for i, write in enumerate(writes):
        statement = statement.add_cte(write.cte(f"riding_{i}"))
    return statement


def _row(session: Session, type_: str, data: dict[str, Any], *, now: datetime,
         ordering_key: str | None) -> dict[str, Any]:
    if type_ not in EVENT_TYPES:
        raise UnknownEventType(f"unknown event type {type_!r}")
    data = with_person(session, data)
    return {"id": str(uuid.uuid4()), "type": type_, "version": EVENT_VERSION, "occurred_at": now,
            "ordering_key": ordering_key, "data": data, "created_at": now}


def _insert_deliveries(session: Session, rows: list[dict[str, Any]], subscribers, *, now: datetime) -> None:
    """The deliveries of the events `rows`, in their order, in one statement."""
    deliveries = [
        {"event_id": row["id"], "connector_id": connector_id, "ordering_key": row["ordering_key"],
         "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for row in rows
        for connector_id, kind, event_types in subscribers
        if subscribes(kind, event_types, row["type"])
    ]
    if deliveries:
        session.execute(_INSERT_DELIVERIES, deliveries)


def emit(
    session: Session,
    type_: str,
    data: dict[str, Any],
    *,
    now: datetime,
    ordering_key: str | None = None,
) -> Event:
    """Write the event and its deliveries now, in the caller's transaction.

    Plain INSERTs rather than ORM objects: emit() is on every webhook's hot path, and
    the rows are never changed in the same transaction. Returns the event (not attached
    to the session)."""
    row = _row(session, type_, data, now=now, ordering_key=ordering_key)
    _insert_deliveries(session, [row], _insert_event(session, row), now=now)
    return Event(**row)


def emit_guarded(session: Session, type_: str, data: dict[str, Any], *, now: datetime, guard: Any,
                 also: tuple[Any, ...] = (), params: dict[str, Any] | None = None,
                 ordering_key: str | None = None) -> bool:
    """PostgreSQL: run `guard` (an UPDATE … RETURNING) and, only if it wrote a row, the
    `also` writes and the event, in one round trip (the transaction's subscribers read in
    it when this is its first event). `also` are callables given the guard's CTE that
    return statements conditioned on it. Returns whether the guard wrote (nothing was
    written, event included, when it did not)."""
    row = _row(session, type_, data, now=now, ordering_key=ordering_key)
    first = is_first_event(session)
    statement = _guarded_statement(guard, tuple(also), first)
    result = session.execute(statement, {**(params or {}), **{f"event_{k}": v for k, v in row.items()}}).one()
    written, subscribers = result[0] > 0, None
    if first:
        subscribers = [(s["id"], s["kind"], s["event_types"]) for s in (result[1] or [])]
        session.info[_SUBSCRIBERS] = subscribers
    if written:
        _insert_deliveries(session, [row], session.info[_SUBSCRIBERS], now=now)
    return written


# The enabled connectors as one JSON value: a column of a caller's own statement.
SUBSCRIBERS_JSON = ("(SELECT json_agg(json_build_object('id', c.id, 'kind', c.kind, 'event_types', c.event_types))"
                    " FROM connectors c WHERE c.enabled)")


def event_params(session: Session, type_: str, data: dict[str, Any], *, now: datetime,
                 ordering_key: str | None = None) -> dict[str, Any]:
    """The row emit() would write, as parameters event_<column>, for a caller whose own
    PostgreSQL statement inserts the event (then call event_written with its result)."""
    row = _row(session, type_, data, now=now, ordering_key=ordering_key)
    return {f"event_{k}": v for k, v in row.items()}


def event_written(session: Session, params: dict[str, Any], subscribers: list[dict[str, Any]] | None, *,
                  now: datetime) -> None:
    """The caller's statement wrote the event of `params`: its deliveries. `subscribers`:
    the statement's SUBSCRIBERS_JSON column when it was the transaction's first event."""
    if is_first_event(session):
        session.info[_SUBSCRIBERS] = [(c["id"], c["kind"], c["event_types"]) for c in (subscribers or [])]
    row = {k.removeprefix("event_"): v for k, v in params.items() if k.startswith("event_")}
    _insert_deliveries(session, [row], session.info[_SUBSCRIBERS], now=now)


@functools.lru_cache(maxsize=32)
def _guarded_statement(guard: Any, also: tuple[Any, ...], first: bool) -> Any:
    from sqlalchemy import exists, func, literal_column

    guarded = guard.cte("guarded")
    wrote = exists(select(literal_column("1")).select_from(guarded))
    event = insert(_events).from_select(
        list(_EVENT_COLUMNS),
        select(*[bindparam(f"event_{name}", type_=_events.c[name].type) for name in _EVENT_COLUMNS]).where(wrote))
    columns = [select(func.count()).select_from(guarded).scalar_subquery()]
    if first:
        subscriber = func.json_build_object("id", _connectors.c.id, "kind", _connectors.c.kind,
                                            "event_types", _connectors.c.event_types)
        columns.append(select(func.json_agg(subscriber)).where(_connectors.c.enabled.is_(True)).scalar_subquery())
    statement = select(*columns).add_cte(event.cte("guarded_event"))
    for i, write in enumerate(also):
        statement = statement.add_cte(write(guarded).cte(f"guarded_{i}"))
    return statement.add_cte(guarded)
