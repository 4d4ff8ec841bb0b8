"""When scheduled reports fire and which period each covers (pure)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from hub.reports.schedule import ScheduleError, When, check, due

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_weekly_on_monday_at_nine_in_the_teams_zone():
    when = When("weekly", "09:00", "Europe/Moscow", weekday=0)
    # Monday 2026-12-07 09:00 Moscow = 06:00 UTC
    assert due(when, at("2026-12-07T06:00:00+00:00")) == (at("2026-11-30T06:00:00+00:00"),
                                                         at("2026-12-07T06:00:00+00:00"))
    assert due(when, at("2026-12-07T05:59:00+00:00"))[1] == at("2026-11-30T06:00:00+00:00"), "not yet this week"
    assert due(when, at("2026-12-12T12:00:00+00:00"))[1] == at("2026-12-07T06:00:00+00:00")


def test_daily_and_monthly():
    daily = When("daily", "08:30")
    assert due(daily, at("2026-12-06T08:29:00+00:00")) == (at("2026-12-04T08:30:00+00:00"),
                                                          at("2026-12-05T08:30:00+00:00"))
    monthly = When("monthly", "07:00", day_of_month=1)
    assert due(monthly, at("2026-12-06T00:00:00+00:00")) == (at("2026-11-01T07:00:00+00:00"),
                                                            at("2026-12-01T07:00:00+00:00"))
    assert due(monthly, at("2027-01-01T06:00:00+00:00"))[1] == at("2026-12-01T07:00:00+00:00")
    assert due(monthly, at("2027-01-01T07:00:00+00:00")) == (at("2026-12-01T07:00:00+00:00"),
                                                            at("2027-01-01T07:00:00+00:00")), "over a year end"


def test_a_local_day_across_daylight_saving_is_23_hours():
    when = When("daily", "00:00", "Europe/Berlin")
    start, end = due(when, at("2026-03-29T23:00:00+00:00"))
    assert (end - start).total_seconds() == 23 * 3600


@pytest.mark.parametrize("when, field", [
    (When("hourly", "09:00"), "frequency"), (When("daily", "9:00"), "at_time"), (When("daily", "25:00"), "at_time"),
    (When("daily", "09:00", "Mars/Base"), "time_zone"), (When("weekly", "09:00", weekday=7), "weekday"),
    (When("monthly", "09:00", day_of_month=31), "day_of_month"),
])
def test_bad_schedules_are_refused_by_name(when, field):
    with pytest.raises(ScheduleError, match=field):
        check(when)


@settings(max_examples=200, deadline=None)
@given(frequency=st.sampled_from(["daily", "weekly", "monthly"]), hour=st.integers(0, 23),
       tz=st.sampled_from(["UTC", "Europe/Moscow", "America/New_York", "Asia/Kolkata"]),
       weekday=st.integers(0, 6), dom=st.integers(1, 28),
       now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)))
def test_the_period_just_ended_is_the_latest_and_they_tile(frequency, hour, tz, weekday, dom, now):
    when = When(frequency, f"{hour:02d}:00", tz, weekday, dom)
    start, end = due(when, now)
    assert start < end <= now
    later_start, later_end = due(when, end)
    assert (later_start, later_end) == (start, end), "a firing is due at its own moment"
    _, before_end = due(when, end - (end - start) / 2)
    assert before_end == start, "the periods tile: each starts where the one before ended"
