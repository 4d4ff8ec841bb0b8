"""Choosing an operator among a team's members: pure, on plain candidate values.

Only operators who are online and under capacity can be chosen. Ties everywhere are
broken the same way: longest since the last assignment (never assigned first), then
the lower user id, so that a decision is repeatable.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    user_id: int
    online: bool
    open_count: int  # open conversations assigned now
    capacity: int
    last_assigned_at: datetime | None

    @property
    def available(self) -> bool:
        return self.online and self.open_count < self.capacity


def _waited(c: Candidate) -> tuple:
    return (c.last_assigned_at is not None, c.last_assigned_at or datetime.min, c.user_id)


def round_robin(candidates: list[Candidate], last_user_id: int | None) -> Candidate | None:
    """The next available member after the one the team assigned last, in user-id order."""
    ring = sorted((c for c in candidates if c.available), key=lambda c: c.user_id)
    if not ring:
        return None
    if last_user_id is not None:
        for c in ring:
            if c.user_id > last_user_id:
                return c
    return ring[0]


def least_busy(candidates: list[Candidate]) -> Candidate | None:
    """Fewest open conversations (as a share of capacity would favour big capacities
    unevenly: plain counts), then longest since the last assignment."""
    available = [c for c in candidates if c.available]
    return min(available, key=lambda c: (c.open_count, *_waited(c)), default=None)


def sticky(candidates: list[Candidate], previous_user_id: int | None) -> Candidate | None:
    """The contact's previous operator when available (None otherwise: the caller waits
    for them or falls back)."""
    for c in candidates:
        if c.user_id == previous_user_id and c.available:
            return c
    return None


def choose(strategy: str, candidates: list[Candidate], *, last_user_id: int | None = None,
           previous_user_id: int | None = None, sticky_expired: bool = True) -> Candidate | None:
    """The operator to assign now, or None (wait in the queue). first_responder never
    chooses: the conversation is offered to the team and the first reply takes it."""
    if strategy == "round_robin":
        return round_robin(candidates, last_user_id)
    if strategy == "least_busy":
        return least_busy(candidates)
    if strategy == "sticky":
        chosen = sticky(candidates, previous_user_id)
        if chosen is not None:
            return chosen
        if previous_user_id is not None and not sticky_expired:
            return None
        return least_busy(candidates)
    if strategy == "first_responder":
        return None
    raise ValueError(f"unknown strategy {strategy!r}")
