"""Choosing an operator: each strategy on plain candidates, ties broken repeatably."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.routing.strategies import Candidate, choose, least_busy, round_robin

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


def op(user_id, *, online=True, open_count=0, capacity=3, last=None):
    return Candidate(user_id=user_id, online=online, open_count=open_count, capacity=capacity, last_assigned_at=last)


def test_round_robin_goes_round_the_available_members_in_id_order():
    team = [op(3), op(1), op(2, online=False), op(4, open_count=3)]  # 2 offline, 4 full
    picks, last = [], None
    for _ in range(4):
        chosen = round_robin(team, last)
        picks.append(chosen.user_id)
        last = chosen.user_id
    assert picks == [1, 3, 1, 3]
    assert round_robin(team, 99).user_id == 1, "after the highest id it starts again"
    assert round_robin([op(1, online=False)], None) is None


def test_least_busy_counts_open_chats_then_longest_since_the_last_assignment():
    team = [op(1, open_count=2), op(2, open_count=1, last=T0), op(3, open_count=1, last=T0 - timedelta(minutes=5)),
            op(4, open_count=0, capacity=0)]
    assert least_busy(team).user_id == 3, "ties on load go to whoever waited longest"
    assert least_busy([op(5, open_count=1, last=T0), op(6, open_count=1)]).user_id == 6, "never assigned first"
    assert least_busy([op(1, open_count=3, capacity=3)]) is None, "at capacity"


def test_sticky_takes_the_previous_operator_or_waits_or_falls_back():
    team = [op(1, open_count=1), op(2)]
    assert choose("sticky", team, previous_user_id=1).user_id == 1
    away = [op(1, online=False), op(2)]
    assert choose("sticky", away, previous_user_id=1, sticky_expired=False) is None, "waits for them"
    assert choose("sticky", away, previous_user_id=1, sticky_expired=True).user_id == 2, "then falls back"
    assert choose("sticky", team, previous_user_id=None).user_id == 2, "a new contact: least busy"


def test_first_responder_never_chooses_and_unknown_strategies_are_errors():
    assert choose("first_responder", [op(1)]) is None
    with pytest.raises(ValueError):
        choose("random", [op(1)])
