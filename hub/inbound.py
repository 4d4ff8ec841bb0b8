"""Inbound webhooks: keep the raw body, parse it, apply it; replay what failed.

A processor for a source (e.g. "whatsapp") has two steps: `parse(body)`, pure, raising
PayloadError for a body that is not what the source sends; and `apply(session, parsed,
raw, now, runtime, channel)`, which writes what it means (`channel`: what the caller has
already read of raw.channel_id, or None). The raw row and everything apply()
writes share one transaction: a database failure loses nothing because the sender
retries, and a body that cannot be parsed is still kept, marked failed with the reason,
and replayed later (`hub webhooks replay`) once the parser is fixed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.models import RawWebhook

if TYPE_CHECKING:
    from hub.runtime import Runtime

log = logging.getLogger(__name__)


class PayloadError(ValueError):
    """The body is not what the source sends (bad JSON, wrong shape)."""


@dataclass(frozen=True)
class Processor:
    parse: Callable[[bytes], Any]
    apply: Callable[[Session, Any, RawWebhook, datetime, "Runtime", Any], None]


_PROCESSORS: dict[str, Processor] = {}


def register_processor(source: str, processor: Processor) -> None:
    _PROCESSORS[source] = processor


def processor_for(source: str) -> Processor:
    try:
        return _PROCESSORS[source]
    except KeyError:
        raise LookupError(f"no processor for webhook source {source!r}") from None


def process_raw(session: Session, raw: RawWebhook, now: datetime, runtime: "Runtime",
                channel: Any = None, *, before_apply: Callable[[RawWebhook], None] | None = None) -> None:
    """Parse and apply `raw` (new or replayed); a parse error marks it failed instead.
    `before_apply(raw)` runs once the raw row's state is final (parsed)."""
    processor = processor_for(raw.source)
    try:
        parsed = processor.parse(raw.body)
    except PayloadError as exc:
        raw.status = "failed"
        raw.error = str(exc)[:2000]
        log.warning("raw webhook from %s could not be parsed: %s", raw.source, exc)
        return
    raw.status = "processed"
    raw.error = None
    raw.processed_at = now
    if before_apply is not None:
        before_apply(raw)
    processor.apply(session, parsed, raw, now, runtime, channel)


_INSERT_RAW = insert(RawWebhook.__table__)
RAW_COLUMNS = ("source", "channel_id", "received_at", "headers", "body", "status", "error", "attempts",
               "processed_at")
_PENDING_RAW = "hub.pending_raw"  # session.info key


def take_pending_raw(session: Session) -> dict[str, Any] | None:
    """The raw webhook row receive() has yet to INSERT, for a processor that writes it in
    a statement of its own (on PostgreSQL, a CTE of the message INSERT: one round trip
    fewer per webhook). Whoever takes it must write it; receive() then does not."""
    return session.info.pop(_PENDING_RAW, None)


def receive(session: Session, *, source: str, channel_id: int | None, headers: dict[str, str],
            body: bytes, now: datetime, runtime: "Runtime", channel: Any = None) -> RawWebhook:
    """Store a freshly received body and process it, in the caller's transaction. The
    row is a plain INSERT (this is every webhook's hot path), or part of one the
    processor makes (take_pending_raw); the returned object is not attached to the
    session. `channel`: what the caller has already read of `channel_id`, handed to the
    processor so that it need not read it again."""
    raw = RawWebhook(source=source, channel_id=channel_id, received_at=now, headers=headers, body=body,
                     status="failed", attempts=1)

    def row() -> dict[str, Any]:
        return {column: getattr(raw, column) for column in RAW_COLUMNS}

    def offer(_parsed: RawWebhook) -> None:
        session.info[_PENDING_RAW] = row()

    session.info.pop(_PENDING_RAW, None)
    process_raw(session, raw, now, runtime, channel, before_apply=offer)
    # Parsed: the row is still pending unless a processor took it; not parsed: never offered.
    pending = session.info.pop(_PENDING_RAW, None) if raw.status == "processed" else row()
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
        with db.scope() as session:
            raw = session.get(RawWebhook, raw_id)
            raw.attempts += 1
            process_raw(session, raw, now, runtime)
            result[raw.status] += 1
    return result
