"""Inbound webhooks: keep the raw body first, parse second, replay what failed.

A processor for a source (e.g. "whatsapp") parses a raw body and writes what it means
in the session it is given. A body that cannot be parsed is kept, marked failed with
the reason and replayed later (`hub webhooks replay`) once the parser is fixed.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import RawWebhook

if TYPE_CHECKING:
    from hub.runtime import Runtime

log = logging.getLogger(__name__)


class PayloadError(ValueError):
    """The body is not what the source sends (bad JSON, wrong shape)."""


Processor = Callable[[Session, RawWebhook, datetime, "Runtime"], None]
_PROCESSORS: dict[str, Processor] = {}


def register_processor(source: str, processor: Processor) -> None:
    _PROCESSORS[source] = processor


def processor_for(source: str) -> Processor:
    try:
        return _PROCESSORS[source]
    except KeyError:
        raise LookupError(f"no processor for webhook source {source!r}") from None


def process_raw(session: Session, raw: RawWebhook, now: datetime, runtime: "Runtime") -> None:
    """Process inside a savepoint: a parse error rolls back what the parser wrote but
    keeps the raw row, marked failed with the reason."""
    processor = processor_for(raw.source)
    try:
        with session.begin_nested():
            processor(session, raw, now, runtime)
    except PayloadError as exc:
        raw.status = "failed"
        raw.error = str(exc)[:2000]
        log.warning("raw webhook %s (%s) could not be parsed: %s", raw.id, raw.source, exc)
        return
    raw.status = "processed"
    raw.error = None
    raw.processed_at = now


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
