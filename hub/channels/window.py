"""What every channel's customer-service window arithmetic shares: the conversation's
stored time it counts from, and timezone-aware instants only.

Windows decide what may be sent, so each channel's rules are pure functions of stored
timestamps and an explicit `now` (the caller passes the clock, tests pass any instant).
The hub stores UTC; a naive value is refused rather than guessed.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol


class HasWindow(Protocol):
    """Anything with the last window-opening customer message's time (the hub's
    Conversation model, a test dataclass)."""

    @property
    def last_inbound_at(self) -> datetime | None: ...


def aware(value: datetime, name: str) -> datetime:
    """`value` itself when it is timezone-aware; a ValueError naming `name` otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime; pass a timezone-aware (UTC) one")
    return value
