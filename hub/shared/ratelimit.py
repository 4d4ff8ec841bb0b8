"""Rate limits held in one process's memory: a token bucket and a sliding window, for a
client used outside the hub (scripts, tests) or for calls that must not draw on the
shared budget. The same limits kept in the database and shared by every process are in
hub.platform.ratelimit; both kinds answer the same calls (try_take, take, give_back,
penalise), so a client takes either.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable


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


class MemoryWindow:
    """The same sliding window in one process's memory."""

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit, self.window, self.clock, self.sleep = limit, window, clock, sleep
        self.used: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def try_take(self, tokens: float = 1.0) -> float:
        with self._lock:
            now = self.clock()
            while self.used and self.used[0] <= now - self.window:
                self.used.popleft()
            if len(self.used) < self.limit:
                self.used.append(now)
                return 0.0
            return max(self.used[0] + self.window - now, 0.001)

    def take(self, tokens: float = 1.0) -> None:
        while (wait := self.try_take(tokens)) > 0:
            self.sleep(wait)

    def give_back(self, tokens: float = 1.0) -> None:
        with self._lock:
            if self.used:
                self.used.pop()

    def penalise(self, seconds: float) -> None:
        with self._lock:
            held = self.clock() + seconds - self.window
            self.used = collections.deque(max(t, held) for t in self.used)
            while len(self.used) < self.limit:
                self.used.appendleft(held)
