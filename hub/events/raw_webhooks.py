"""Inbound webhooks: keep the raw body, parse it, apply it; replay what failed.

A processor for a source (e.g. "whatsapp") has two steps: `parse(body)`, pure, raising
PayloadError for a body that is not what the source sends; and `apply(session, parsed,
raw, now, runtime, channel)`, which writes what it means (`channel`: what the caller has
already read of raw.channel_id, or None). The raw row and everything apply()
writes share one transaction: a database failure loses nothing because the sender
retries, and a body that cannot be parsed is still kept, marked failed with the reason,
and replayed later (`hub webhooks replay`) once the parser is fixed.

A parse may also refuse only parts of a body (`parsed.problems`) and repair values to
make them storable (`parsed.notes`): the rest is applied, and the row is marked failed
(replayable) with the problems as its error. Should applying still fail on what the
data is (a value the database refuses, a fault in the code on an odd value) rather than
on the database itself, the caller rolls back and stores the body again part by part
(`isolate=True`, each part in a savepoint): the parts that fail are refused by name and
the rest is kept. Only a failing database (connection, lock, concurrent duplicate)
escapes as an error, so that the sender retries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.events.storable import repair_text
from hub.models import RawWebhook

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)


class PayloadError(ValueError):
    """The body is not what the source sends (bad JSON, wrong shape)."""


@dataclass(frozen=True)
class Processor:
    parse: Callable[[bytes], Any]
    apply: Callable[[Session, Any, RawWebhook, datetime, "Runtime", Any], None]
    # parsed -> [(place, part)], each part something apply() takes: for isolate=True.
    split: Callable[[Any], list[tuple[str, Any]]] | None = None


MAX_ERROR = 2000


def is_bad_data(exc: BaseException) -> bool:
    """Did applying fail on the data (so that a retry would fail the same way), rather
    than on the database being unreachable, locked or raced?"""
    if isinstance(exc, sa_exc.DataError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return False
    if isinstance(exc, sa_exc.StatementError):  # a bind processor refused a value
        return True
    return isinstance(exc, (ValueError, TypeError, LookupError, AttributeError, ArithmeticError,
                            RecursionError))


def describe(exc: BaseException) -> str:
    """The fault in one short line, without the statement or its parameters (which carry
    customer data): e.g. "StringDataRightTruncation: value too long for type ..."."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:300]


def _place(problem: str) -> str:
    """Where a problem is, without the fault (which may quote the value) — for logs; the
    raw webhook row keeps the whole reason."""
    return problem.split(": ", 1)[0]


def _summary(problems: list[str], notes: list[str]) -> str | None:
    parts = problems + [f"repaired {note}" for note in notes]
    return "; ".join(parts)[:MAX_ERROR] if parts else None


_PROCESSORS: dict[str, Processor] = {}


def register_processor(source: str, processor: Processor) -> None:
    _PROCESSORS[source] = processor


def processor_for(source: str) -> Processor:
    try:
        return _PROCESSORS[source]
    except KeyError:
        raise LookupError(f"no processor for webhook source {source!r}") from None


def process_raw(session: Session, raw: "RawWebhook | FreshRaw", now: datetime, runtime: "Runtime",
                channel: Any = None, *, before_apply: Callable[[RawWebhook], None] | None = None,
                isolate: bool = False) -> None:
    """Parse and apply `raw` (new or replayed); a parse error marks it failed instead.
    `before_apply(raw)` runs once the raw row's state is final (parsed; not with
    `isolate`, where the state is known only after every part was tried)."""
    processor = processor_for(raw.source)
    try:
        parsed = processor.parse(raw.body)
    except PayloadError as exc:
        raw.status = "failed"
        raw.error = str(exc)[:MAX_ERROR]
        log.warning("raw webhook from %s could not be parsed: %s", raw.source, _place(str(exc)))
        return
    except RecursionError:
        raw.status = "failed"
        raw.error = "body is nested too deeply to parse"
        log.warning("raw webhook from %s is nested too deeply to parse", raw.source)
        return
    problems = list(getattr(parsed, "problems", ()))
    notes = list(getattr(parsed, "notes", ()))
    if problems:
        log.warning("raw webhook from %s: %d part(s) refused: %s", raw.source, len(problems),
                    ", ".join(_place(p) for p in problems)[:MAX_ERROR])
    raw.processed_at = now
    if isolate:
        problems += _apply_part_by_part(session, processor, parsed, raw, now, runtime, channel)
    raw.status = "failed" if problems else "processed"
    raw.error = _summary(problems, notes)
    if isolate:
        return
    if before_apply is not None:
        before_apply(raw)
    processor.apply(session, parsed, raw, now, runtime, channel)


def _apply_part_by_part(session: Session, processor: Processor, parsed: Any, raw: RawWebhook, now: datetime,
                        runtime: "Runtime", channel: Any) -> list[str]:
    """Each part in a savepoint of its own; the parts the data makes fail are named."""
    parts = processor.split(parsed) if processor.split else [("body", parsed)]
    refused = []
    for place, part in parts:
        try:
            with session.begin_nested():
                processor.apply(session, part, raw, now, runtime, channel)
        except Exception as exc:
            if not is_bad_data(exc):
                raise
            refused.append(f"{place}: could not be stored ({describe(exc)})")
            log.warning("raw webhook from %s: %s could not be stored (%s)", raw.source, place, describe(exc))
    return refused


_INSERT_RAW = insert(RawWebhook.__table__)


@dataclass(slots=True)
class FreshRaw:
    """A just-received raw webhook before its INSERT: what process_raw and the processors
    read and set of a RawWebhook, without building an ORM object on every webhook
    (that cost as much as parsing the body). `id` stays None: the row is written by a
    plain INSERT."""

    source: str
    channel_id: int | None
    received_at: datetime
    headers: dict[str, str]
    body: bytes
    status: str = "failed"
    error: str | None = None
    attempts: int = 1
    processed_at: datetime | None = None
    id: None = None


RAW_COLUMNS = ("source", "channel_id", "received_at", "headers", "body", "status", "error", "attempts",
               "processed_at")
_PENDING_RAW = "hub.pending_raw"  # session.info key


def take_pending_raw(session: Session) -> dict[str, Any] | None:
    """The raw webhook row receive() has yet to INSERT, for a processor that writes it in
    a statement of its own (on PostgreSQL, a CTE of the message INSERT: one round trip
    fewer per webhook). Whoever takes it must write it; receive() then does not."""
    return session.info.pop(_PENDING_RAW, None)


def receive(session: Session, *, source: str, channel_id: int | None, headers: dict[str, str],
            body: bytes, now: datetime, runtime: "Runtime", channel: Any = None,
            isolate: bool = False) -> FreshRaw:
    """Store a freshly received body and process it, in the caller's transaction. The
    row is a plain INSERT (this is every webhook's hot path), or part of one the
    processor makes (take_pending_raw); what is returned is the row as written, not an
    ORM object. `channel`: what the caller has already read of `channel_id`, handed to the
    processor so that it need not read it again. `isolate`: the second try of a body
    whose first one failed on its data (is_bad_data), part by part."""
    headers = {name: repair_text(value) for name, value in headers.items()}
    raw = FreshRaw(source=source, channel_id=channel_id, received_at=now, headers=headers, body=body)

    def row() -> dict[str, Any]:
        return {column: getattr(raw, column) for column in RAW_COLUMNS}

    def offer(_parsed: FreshRaw) -> None:
        session.info[_PENDING_RAW] = row()

    session.info.pop(_PENDING_RAW, None)
    process_raw(session, raw, now, runtime, channel, before_apply=None if isolate else offer, isolate=isolate)
    # Applied whole: the row is still pending unless a processor took it; otherwise it
    # was never offered.
    pending = session.info.pop(_PENDING_RAW, None) if raw.processed_at is not None and not isolate else row()
    if pending is not None:
        session.execute(_INSERT_RAW, pending)
    return raw


def replay(runtime: "Runtime", *, now: datetime, ids: list[int] | None = None) -> dict[str, int]:
    """Process failed raw webhooks again, one transaction each."""
    db = runtime.db
    with db.scope() as session:
        query = select(RawWebhook.id).where(RawWebhook.status == "failed").order_by(RawWebhook.id)
        if ids:
            query = query.where(RawWebhook.id.in_(ids))
        todo = list(session.scalars(query))
    result = {"processed": 0, "failed": 0}
    for raw_id in todo:
        try:
            status = _replay_one(db, raw_id, now, runtime, isolate=False)
        except Exception as exc:
            if not is_bad_data(exc):
                raise
            status = _replay_one(db, raw_id, now, runtime, isolate=True)
        result[status] += 1
    return result


def _replay_one(db: Any, raw_id: int, now: datetime, runtime: "Runtime", *, isolate: bool) -> str:
    with db.scope() as session:
        raw = session.get(RawWebhook, raw_id)
        raw.attempts += 1
        process_raw(session, raw, now, runtime, isolate=isolate)
        return raw.status
