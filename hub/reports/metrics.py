"""Metric definitions (docs/metrics.md), pure: messages in, seconds and counts out.

A conversation's messages are Beats (time, inbound?, written by a person?). Business
time follows the conversation's team (its hours, holidays, zone); without a team it is
wall-clock time. Automated messages (no author: bots, off-hours replies) answer nothing.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from hub.routing import hours
from hub.routing.sla import Beat, waiting_periods

# Response-time histogram: upper bounds in seconds (the last bucket is open).
BUCKETS = ((30, "<30 s"), (120, "30 s-2 min"), (300, "2-5 min"), (600, "5-10 min"), (1800, "10-30 min"),
           (3600, "30-60 min"), (None, ">1 h"))


@dataclass(frozen=True)
class Clock:
    """The hours a conversation's times are measured in (no team: always open)."""

    hours: dict[str, Any]
    holidays: tuple[str, ...] = ()
    time_zone: str = "UTC"

    def between(self, start: datetime, end: datetime) -> float:
        return hours.business_seconds(self.hours, list(self.holidays), self.time_zone, start, end)


ALWAYS = Clock({})


def responses(beats: Iterable[Beat]) -> list[tuple[datetime, datetime]]:
    """(the customer's last message before a reply, the person's reply) for every human
    reply that answered something: a burst of customer messages is answered once, and
    is measured from its last message."""
    out, last_inbound = [], None
    for beat in sorted(beats, key=lambda b: b.at):
        if beat.inbound:
            last_inbound = beat.at
        elif beat.human and last_inbound is not None:
            out.append((last_inbound, beat.at))
            last_inbound = None
    return out


def response_seconds(beats: Iterable[Beat], clock: Clock = ALWAYS) -> list[float]:
    """Business seconds of every response (see responses())."""
    return [clock.between(asked, answered) for asked, answered in responses(beats)]


def first_response_seconds(beats: Iterable[Beat], clock: Clock = ALWAYS) -> float | None:
    """The first response of the conversation; None when no person has answered."""
    found = response_seconds(beats, clock)
    return found[0] if found else None


def first_customer_message(beats: Iterable[Beat]) -> datetime | None:
    return min((b.at for b in beats if b.inbound), default=None)


def missed(beats: list[Beat], *, within_seconds: float, now: datetime, clock: Clock = ALWAYS) -> bool:
    """No human reply within `within_seconds` business seconds of the customer's first
    message (a conversation the customer never wrote in cannot be missed). One still
    waiting counts once that much business time has passed by `now`."""
    first = first_customer_message(beats)
    if first is None:
        return False
    reply = min((b.at for b in beats if b.human and b.at >= first), default=None)
    return clock.between(first, reply or now) > within_seconds


def resolution_seconds(opened_at: datetime, closed_at: datetime | None, clock: Clock = ALWAYS) -> float | None:
    """Business seconds from the conversation's start to its close; None while open."""
    return None if closed_at is None else clock.between(opened_at, closed_at)


def bucket(seconds: float) -> str:
    for bound, label in BUCKETS:
        if bound is None or seconds < bound:
            return label
    raise AssertionError("the last bucket is open")


def histogram(values: Iterable[float]) -> dict[str, int]:
    counts = {label: 0 for _bound, label in BUCKETS}
    for value in values:
        counts[bucket(value)] += 1
    return counts


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (share 0.5 = the median); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def sla_met(policy: dict[str, Any], beats: list[Beat], *, closed_at: datetime | None, now: datetime,
            clock: Clock = ALWAYS) -> bool | None:
    """Did the conversation keep its team's SLA (hub.routing.sla's clocks: each wait for a
    person within first_response_seconds, then next_response_seconds, and all the waits
    together within resolution_seconds)? False once any clock reached its target; None
    while a clock is still running under its target, when the policy sets no target, or
    when the customer never waited; True when every clock stopped in time."""
    targets = [policy.get(k) for k in ("first_response_seconds", "next_response_seconds", "resolution_seconds")]
    if not any(targets):
        return None
    until = min(closed_at, now) if closed_at else now  # a close stops every clock
    periods = waiting_periods(beats, until)
    if not periods:
        return None
    pending = False
    total = 0.0
    for i, (start, end) in enumerate(periods):
        elapsed = clock.between(start, end or until)
        total += elapsed
        limit = policy.get("first_response_seconds" if i == 0 else "next_response_seconds")
        if limit and elapsed >= limit:
            return False
        pending = pending or (bool(limit) and end is None and closed_at is None)
    resolution = policy.get("resolution_seconds")
    if resolution:
        if total >= resolution:
            return False
        pending = pending or closed_at is None
    return None if pending else True


def share(part: int, whole: int) -> float | None:
    """part of whole in percent, one decimal; None of nothing."""
    return round(part * 100 / whole, 1) if whole else None
