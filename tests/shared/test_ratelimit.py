"""The shared rate limits: the sliding window (rolling-window services such as HubSpot)
in the database and in memory, with time passed in."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from hub.platform.ratelimit import SlidingWindow
from hub.shared.ratelimit import MemoryWindow

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_at_most_limit_takes_in_any_rolling_window(runtime):
    clock = Clock()
    window = SlidingWindow(runtime.db, "svc:api", limit=3, window=10, clock=clock)
    assert [window.try_take() for _ in range(3)] == [0, 0, 0]
    assert window.try_take() == pytest.approx(10)
    clock.advance(4)
    assert window.try_take() == pytest.approx(6)
    clock.advance(6)  # the first three are 10 s old: all three free at once, not one by one
    assert [window.try_take() for _ in range(3)] == [0, 0, 0]
    assert window.try_take() == pytest.approx(10)


def test_a_pause_is_caught_up_after_it(runtime):
    """What a spread-out bucket cannot do: after a slow stretch the window still holds
    the requests not made, and they go at once."""
    clock = Clock()
    window = SlidingWindow(runtime.db, "svc:api", limit=10, window=10, clock=clock)
    for _ in range(2):
        assert window.try_take() == 0
        clock.advance(3)  # the client spends 3 s on its answers
    assert [window.try_take() for _ in range(8)] == [0] * 8
    assert window.try_take() > 0


def test_every_process_shares_the_window_and_a_429_holds_all_back(runtime):
    clock = Clock()
    one = SlidingWindow(runtime.db, "svc:api", limit=2, window=10, clock=clock)
    other = SlidingWindow(runtime.db, "svc:api", limit=2, window=10, clock=clock)
    assert one.try_take() == 0 and other.try_take() == 0
    assert one.try_take() > 0 and other.try_take() > 0
    clock.advance(10)
    one.penalise(30)
    assert other.try_take() == pytest.approx(30)
    clock.advance(30)
    assert other.try_take() == 0 and one.try_take() == 0
    one.give_back()
    assert other.try_take() == 0
    unrelated = SlidingWindow(runtime.db, "svc:other", limit=1, window=10, clock=clock)
    assert unrelated.try_take() == 0


def test_concurrent_takers_never_exceed_the_limit(runtime):
    clock = Clock()
    taken = []

    def taker():
        window = SlidingWindow(runtime.db, "svc:api", limit=5, window=10, clock=clock)
        for _ in range(6):
            if window.try_take() == 0:
                taken.append(1)

    if runtime.db.is_sqlite:
        taker()
        taker()
    else:
        threads = [threading.Thread(target=taker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(taken) == 5


def test_memory_window():
    now = [100.0]
    window = MemoryWindow(3, 10, clock=lambda: now[0])
    assert [window.try_take() for _ in range(3)] == [0, 0, 0]
    assert window.try_take() == pytest.approx(10)
    now[0] += 10
    assert [window.try_take() for _ in range(3)] == [0, 0, 0]
    window.penalise(20)
    assert window.try_take() == pytest.approx(20)
    now[0] += 20
    assert window.try_take() == 0
    window.give_back()
    assert [window.try_take() for _ in range(3)] == [0, 0, 0]
    assert window.try_take() > 0
