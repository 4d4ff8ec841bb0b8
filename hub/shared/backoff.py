"""When to try again: exponential backoff with jitter, Retry-After first."""
from __future__ import annotations

import random
from datetime import datetime, timedelta


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failure: base * 2^(n-1), capped, with
    "equal jitter" (half fixed, half random) so retries of a burst spread out but
    never come back sooner than half the nominal delay."""
    rng = rng or random
    nominal = min(cap, base * (2 ** max(0, attempts - 1)))
    return nominal / 2 + rng.random() * nominal / 2


def next_attempt_at(
    now: datetime,
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_at: datetime | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """The server's Retry-After wins when it gave one; else our own backoff."""
    if retry_at is not None:
        return max(retry_at, now)
    return now + timedelta(seconds=backoff_delay(attempts, base, cap, rng))
