"""A token bucket kept in the database and shared by every process.

Each take is a short transaction that locks the bucket row (SELECT ... FOR UPDATE on
PostgreSQL; SQLite serialises writers anyway), refills it for the time elapsed and takes
a token if there is one. Callers that find it empty sleep exactly until the next token.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.db import Database, utcnow
from hub.models import RateBucket


class TokenBucket:
    def __init__(self, db: Database, name: str, *, rate: float, burst: float,
                 clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.db = db
        self.name = name
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.sleep = sleep

    def try_take(self, tokens: float = 1.0) -> float:
        """Take `tokens` if available; returns 0, or the seconds to wait before retrying."""
        now = self.clock()
        with self.db.scope() as session:
            bucket = session.scalar(
                select(RateBucket).where(RateBucket.name == self.name).with_for_update()
            )
            if bucket is None:
                try:
                    with session.begin_nested():
                        session.add(RateBucket(name=self.name, tokens=self.burst - tokens, updated_at=now))
                    return 0.0
                except IntegrityError:
                    bucket = session.scalar(
                        select(RateBucket).where(RateBucket.name == self.name).with_for_update()
                    )
            elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
            available = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated_at = now
            if available >= tokens:
                bucket.tokens = available - tokens
                return 0.0
            bucket.tokens = available
            return (tokens - available) / self.rate

    def give_back(self, tokens: float = 1.0) -> None:
        """Return tokens taken for an attempt that turned out not to count (a sign-in that
        succeeded), never filling the bucket past its burst."""
        now = self.clock()
        with self.db.scope() as session:
            bucket = session.scalar(
                select(RateBucket).where(RateBucket.name == self.name).with_for_update()
            )
            if bucket is not None:
                elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
                bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate + tokens)
                bucket.updated_at = now

    def take(self, tokens: float = 1.0) -> None:
        """Block until `tokens` are taken."""
        while True:
            wait = self.try_take(tokens)
            if wait <= 0:
                return
            self.sleep(wait)

    def penalise(self, seconds: float) -> None:
        """The service said "too many requests": empty the bucket for `seconds`."""
        now = self.clock()
        with self.db.scope() as session:
            bucket = session.scalar(
                select(RateBucket).where(RateBucket.name == self.name).with_for_update()
            )
            if bucket is not None:
                bucket.tokens = min(bucket.tokens, -seconds * self.rate)
                bucket.updated_at = now


class MemoryBucket:
    """The same token bucket held in one process's memory: for a client used outside the
    hub (scripts, tests) or for calls that must not draw on the shared budget."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self.tokens, self.updated = burst, clock()
        self._lock = threading.Lock()

    def try_take(self, tokens: float = 1.0) -> float:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= tokens:
                self.tokens -= tokens
                return 0.0
            return (tokens - self.tokens) / self.rate

    def give_back(self, tokens: float = 1.0) -> None:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate + tokens)
            self.updated = now

    def take(self, tokens: float = 1.0) -> None:
        while (wait := self.try_take(tokens)) > 0:
            self.sleep(wait)

    def penalise(self, seconds: float) -> None:
        with self._lock:
            self.tokens = min(self.tokens, -seconds * self.rate)
            self.updated = self.clock()
