"""The held window (hub.platform.ratelimit.HeldWindow) with time passed in: however long
requests travel, in whatever order they arrive and however late their slots are
released, the service never counts more than `limit` of them in a rolling second — the
WhatsApp emulator's own counter (130429) is the judge."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hub.channels.whatsapp.emulator.state import ThroughputWindow
from hub.platform.ratelimit import HeldWindow

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
_names = itertools.count()


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@dataclass
class Taker:
    """A sender thread or process: batches of requests, each request (latency, where
    in its latency it reaches the service 0..1, how late its slot is released)."""
    window: HeldWindow
    batches: list[list[tuple[float, float, float]]]
    gap: float
    ready: datetime = T0
    started: int = 0  # of the current batch
    in_flight: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # (release at, answer, slot)


def simulate(db, *, limit: int, window: float, takers_spec, processes: int) -> tuple[list[datetime], int]:
    """Runs the takers against `processes` HeldWindow objects of one name on a clock of
    its own; returns the moments the service counted each request, and how many were made."""
    clock = Clock()
    name = f"test:held:{next(_names)}"
    windows = [HeldWindow(db, name, limit=limit, window=window, hold=600, clock=clock) for _ in range(processes)]
    takers = [Taker(windows[i % processes], batches, gap) for i, (batches, gap) in enumerate(takers_spec)]
    arrivals: list[datetime] = []
    expected = sum(len(b) for batches, _ in takers_spec for b in batches)
    for _ in range(20 * expected + 100):
        now = clock.now
        for taker in takers:
            due = [f for f in taker.in_flight if f[0] <= now]
            if due:
                taker.window.release({slot: answer for _, answer, slot in due})
                taker.in_flight = [f for f in taker.in_flight if f[0] > now]
            if not taker.batches or taker.ready > now:
                continue
            batch = taker.batches[0]
            if taker.started == len(batch):
                if not taker.in_flight:  # the batch is answered and recorded: the next one, after a gap
                    taker.batches.pop(0)
                    taker.started, taker.ready = 0, now + timedelta(seconds=taker.gap)
                continue
            slots, wait = taker.window.try_take(len(batch) - taker.started)
            if not slots:
                taker.ready = now + timedelta(seconds=wait)
                continue
            for slot in slots:
                latency, reach, late = batch[taker.started]
                taker.started += 1
                answer = now + timedelta(seconds=latency)
                arrivals.append(now + timedelta(seconds=latency * reach))
                taker.in_flight.append((answer + timedelta(seconds=late), answer, slot))
        moments = [t.ready for t in takers if t.batches and t.ready > now]
        moments += [f[0] for t in takers for f in t.in_flight]
        if not moments:
            if all(not t.batches for t in takers):
                break
            continue  # something became free or ready now: go round again at the same moment
        clock.now = max(now, min(moments))
    return sorted(arrivals), expected


def never_throttled(arrivals: list[datetime], limit: int) -> bool:
    counter = ThroughputWindow()
    for at in arrivals:
        if counter.full("number", at, limit):
            return False
        counter.record("number", at)
    return True


request = st.tuples(st.floats(0, 2.5), st.floats(0, 1), st.floats(0, 0.5))
taker = st.tuples(st.lists(st.lists(request, min_size=1, max_size=6), min_size=1, max_size=4), st.floats(0, 0.3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 8), takers_spec=st.lists(taker, min_size=1, max_size=4), processes=st.integers(1, 2))
def test_no_second_of_the_service_counts_more_than_the_limit(runtime, limit, takers_spec, processes):
    arrivals, expected = simulate(runtime.db, limit=limit, window=1.0, takers_spec=takers_spec,
                                  processes=processes)
    assert len(arrivals) == expected  # every request was made: the window holds back, it does not stall
    assert never_throttled(arrivals, limit)


def test_a_window_counted_from_the_start_of_each_request_is_throttled(runtime):
    """Why the slot is held until the answer: the same requests counted from their
    starts alone (a plain sliding window) reach the service 3 in one second."""
    starts = [T0, T0 + timedelta(seconds=1.0), T0 + timedelta(seconds=1.05)]
    travel = [0.9, 0.0, 0.0]  # the first one reached the service late
    arrivals = sorted(s + timedelta(seconds=t) for s, t in zip(starts, travel))
    assert not never_throttled(arrivals, 2)
    arrivals, expected = simulate(runtime.db, limit=2, window=1.0, processes=1, takers_spec=[
        ([[(0.9, 1.0, 0.0)], [(0.0, 0.0, 0.0)], [(0.0, 0.0, 0.0)]], 0.0)])
    assert len(arrivals) == expected == 3 and never_throttled(arrivals, 2)


def test_slots_free_a_window_after_each_answer_and_a_throttle_holds_them(runtime):
    clock = Clock()
    window = HeldWindow(runtime.db, "test:held:plain", limit=2, window=1.0, hold=60, clock=clock)
    (a, b), wait = window.try_take(5)
    assert wait == 0 and window.try_take(1) == ([], pytest.approx(60))  # held while in flight
    clock.now = T0 + timedelta(seconds=0.3)
    window.release({a: T0 + timedelta(seconds=0.2), b: T0 + timedelta(seconds=0.3)})
    assert window.try_take(1) == ([], pytest.approx(0.9))
    clock.now = T0 + timedelta(seconds=1.2)
    assert window.try_take(2) == ([a], 0)  # b frees at 1.3
    clock.now = T0 + timedelta(seconds=1.3)
    window.penalise(2.0)
    assert window.try_take(1) == ([], pytest.approx(2.0))
    clock.now = T0 + timedelta(seconds=3.3)
    assert window.try_take(1) == ([b], 0)


def test_bad_arguments_are_refused(runtime):
    with pytest.raises(ValueError):
        HeldWindow(runtime.db, "x", limit=0, window=1.0, hold=10)
    with pytest.raises(ValueError):
        HeldWindow(runtime.db, "x", limit=1, window=1.0, hold=0.5)
    with pytest.raises(ValueError):
        HeldWindow(runtime.db, "x", limit=1, window=1.0, hold=10).try_take(0)
