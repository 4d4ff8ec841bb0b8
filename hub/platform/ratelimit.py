"""Rate limits kept in the database and shared by every process: a token bucket, a
sliding window for services that count requests in a rolling window, and a held window
for services that count a request when it reaches them. Their rows (`rate_buckets`) are
defined here with the limiters, the only code that reads them.

Each take is a short transaction that locks the bucket row (SELECT ... FOR UPDATE on
PostgreSQL; SQLite serialises writers anyway), refills it for the time elapsed and takes
a token if there is one. Callers that find it empty sleep exactly until the next token.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import Float, String, and_, case, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, Database, UTCDateTime, utcnow


class RateBucket(Base):
    """One token bucket, or one slot of a window (`<name>#<n>`)."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


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


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def create_slots(db: Database, slots: list[str]) -> None:
    """The window's slot rows that do not exist yet, each free (stamped at the epoch);
    several processes may make them at once."""
    with db.scope() as session:
        have = set(session.scalars(select(RateBucket.name).where(RateBucket.name.in_(slots))))
        for name in slots:
            if name not in have:
                try:
                    with session.begin_nested():
                        session.add(RateBucket(name=name, tokens=0.0, updated_at=EPOCH))
                except IntegrityError:
                    pass  # another process made it


class SlidingWindow:
    """At most `limit` takes in any rolling `window` seconds, shared by every process:
    the limit services such as HubSpot state ("100 requests per 10 seconds, rolling").

    A token bucket can only honour such a limit by spreading it (one request every
    window/limit seconds), so a client that spends a little longer than that between
    two requests loses the difference for good. Here the window itself is kept: one row
    per slot (`<name>#<n>`), each holding when it was last used; a take locks the
    least recently used slot that no other process holds (SKIP LOCKED) and uses it if
    it is more than `window` seconds old."""

    def __init__(self, db: Database, name: str, *, limit: int, window: float,
                 clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.db = db
        self.name = name
        self.limit = limit
        self.window = timedelta(seconds=window)
        self.clock = clock
        self.sleep = sleep
        self.slots = [f"{name}#{n}" for n in range(limit)]

    def _range(self, column=RateBucket.name):
        # The slots' names sort together: "<name>#" up to (not including) "<name>$".
        return and_(column >= f"{self.name}#", column < f"{self.name}$")

    def try_take(self, tokens: float = 1.0) -> float:
        """Take one slot; returns 0, or the seconds until the oldest slot frees.

        One statement in the usual case: the least recently used free slot no other
        process holds right now, stamped with the time of this request."""
        if tokens != 1.0:
            raise ValueError("a sliding window takes one request at a time")
        now = self.clock()
        cutoff = now - self.window
        free = (select(RateBucket.name).where(self._range(), RateBucket.name.in_(self.slots),
                                              RateBucket.updated_at <= cutoff)
                .order_by(RateBucket.updated_at).limit(1).with_for_update(skip_locked=True).scalar_subquery())
        with self.db.scope() as session:
            taken = session.execute(update(RateBucket).where(RateBucket.name == free)
                                    .values(updated_at=now).returning(RateBucket.name)).first()
            if taken is not None:
                return 0.0
            used = session.execute(select(func.count(), func.min(RateBucket.updated_at))
                                   .where(self._range(), RateBucket.name.in_(self.slots))).one()
        if used[0] < self.limit:
            create_slots(self.db, self.slots)  # first use, or a larger limit than before
            return self.try_take(tokens)
        if used[1] is None or used[1] + self.window <= now:
            return 0.01  # the free ones are being taken by other processes right now
        return max((used[1] + self.window - now).total_seconds(), 0.001)

    def take(self, tokens: float = 1.0) -> None:
        while (wait := self.try_take(tokens)) > 0:
            self.sleep(wait)

    def give_back(self, tokens: float = 1.0) -> None:
        """Free the most recently used slot (a request that turned out not to count)."""
        with self.db.scope() as session:
            slot = session.scalar(select(RateBucket).where(RateBucket.name.in_(self.slots))
                                  .order_by(RateBucket.updated_at.desc()).limit(1).with_for_update())
            if slot is not None:
                slot.updated_at = EPOCH

    def penalise(self, seconds: float) -> None:
        """The service said "too many requests": no slot frees for `seconds`."""
        held = self.clock() + timedelta(seconds=seconds) - self.window
        with self.db.scope() as session:
            session.execute(update(RateBucket).where(RateBucket.name.in_(self.slots),
                                                     RateBucket.updated_at < held).values(updated_at=held))


class HeldWindow:
    """At most `limit` requests in any rolling `window` seconds *as the service counts
    them*, shared by every process and thread: a request is counted when it reaches the
    service, at some moment between the client starting it and reading its answer, and
    the client cannot know when. So each request holds one of `limit` slots from before
    it starts until `window` seconds after its answer came back. The service's moments
    of any `limit` + 1 requests then cannot fall within one window: for a request counted
    at moment t, every request counted in (t - window, t] started before t and answered
    after t - window, so its slot was held at t, as was the request's own — `limit` + 1
    slots at once, which there are not. However late, slow or out of order the requests
    travel, and whoever retries what.

    One row per slot (`<name>#<n>`) holding the moment it frees: a take stamps up to k
    free slots "held" (for `hold` seconds, so a process killed mid-request frees them in
    time) in one statement; `release` stamps each with its request's answer + window."""

    def __init__(self, db: Database, name: str, *, limit: int, window: float, hold: float,
                 clock: Callable[[], datetime] = utcnow):
        if limit < 1 or window <= 0 or hold <= window:
            raise ValueError("limit must be >= 1, window > 0 and hold longer than the window")
        self.db = db
        self.name = name
        self.limit = limit
        self.window = timedelta(seconds=window)
        self.hold = timedelta(seconds=hold)
        self.clock = clock
        self.slots = [f"{name}#{n}" for n in range(limit)]

    def try_take(self, count: int) -> tuple[list[str], float]:
        """Up to `count` free slots, held from now: (their names, 0), or ([], the seconds
        until the first slot frees as far as this process can see)."""
        if count < 1:
            raise ValueError("take at least one slot")
        now = self.clock()
        free = (select(RateBucket.name).where(RateBucket.name.in_(self.slots), RateBucket.updated_at <= now)
                .order_by(RateBucket.updated_at).limit(min(count, self.limit))
                .with_for_update(skip_locked=True))
        with self.db.scope() as session:
            taken = list(session.scalars(update(RateBucket).where(RateBucket.name.in_(free))
                                         .values(updated_at=now + self.hold).returning(RateBucket.name)
                                         .execution_options(synchronize_session=False)))
            if taken:
                return taken, 0.0
            have, first = session.execute(select(func.count(), func.min(RateBucket.updated_at))
                                          .where(RateBucket.name.in_(self.slots))).one()
        if have < self.limit:
            create_slots(self.db, self.slots)  # first use, or a larger limit than before
            return self.try_take(count)
        if first is None or first <= now:
            return [], 0.005  # the free ones are being taken by other processes right now
        return [], max((first - now).total_seconds(), 0.001)

    def release(self, answered: dict[str, datetime]) -> None:
        """Each slot frees `window` after its request's answer (or its failure to get one)."""
        if not answered:
            return
        stamp = RateBucket.updated_at.type
        frees = case({name: literal(at + self.window, stamp) for name, at in answered.items()},
                     value=RateBucket.name)
        with self.db.scope() as session:
            session.execute(update(RateBucket).where(RateBucket.name.in_(list(answered)))
                            .values(updated_at=frees).execution_options(synchronize_session=False))

    def penalise(self, seconds: float) -> None:
        """The service said "too many requests" all the same: no slot frees for `seconds`
        (slots still held stay held)."""
        until = self.clock() + timedelta(seconds=seconds)
        with self.db.scope() as session:
            session.execute(update(RateBucket).where(RateBucket.name.in_(self.slots), RateBucket.updated_at < until)
                            .values(updated_at=until).execution_options(synchronize_session=False))
