"""Outbound message status from status webhooks, whatever their order or repetition.

Meta does not keep order (read may come before delivered, failed after delivered when the
user has several devices) and retries freely. So every status webhook is kept (one row per
wamid and status) and the message's state is a pure function of the set: the highest
status reached, `failed` only if nothing reached a device, timestamps and pricing from the
rows themselves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 4}


@dataclass(frozen=True)
class StatusRow:
    status: str
    timestamp: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Resolved:
    status: str | None  # None: no webhook yet (the send state stands)
    accepted_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: int | None
    error_title: str | None
    pricing: dict[str, Any] | None
    delivered: bool


def _first(rows: list[StatusRow]) -> StatusRow:
    """A total order, so duplicates with different bodies still resolve the same way."""
    return min(rows, key=lambda r: (r.timestamp, json.dumps(r.data, sort_keys=True, default=str)))


def resolve(rows: Iterable[StatusRow]) -> Resolved:
    by_status: dict[str, list[StatusRow]] = {}
    for row in rows:
        by_status.setdefault(row.status, []).append(row)
    chosen = {status: _first(group) for status, group in by_status.items()}
    reached = [s for s in chosen if s in RANK]
    highest = max(reached, key=RANK.__getitem__) if reached else None
    failed = chosen.get("failed")
    delivered = highest is not None and RANK[highest] >= RANK["delivered"]
    if failed is not None and not delivered:
        status = "failed"
    else:
        status = highest
    error_code = error_title = None
    if failed is not None:
        errors = failed.data.get("errors") or []
        if errors:
            error_code, error_title = errors[0].get("code"), errors[0].get("title")
    priced = [r for r in chosen.values() if r.data.get("pricing")]
    pricing = None
    if priced:
        best = max(priced, key=lambda r: (RANK.get(r.status, 0), r.timestamp))
        pricing = best.data["pricing"]
    return Resolved(
        status=status,
        accepted_at=chosen["sent"].timestamp if "sent" in chosen else None,
        delivered_at=chosen["delivered"].timestamp if "delivered" in chosen else None,
        read_at=chosen["read"].timestamp if "read" in chosen else None,
        failed_at=failed.timestamp if failed else None,
        error_code=error_code,
        error_title=error_title,
        pricing=pricing,
        delivered=delivered,
    )
