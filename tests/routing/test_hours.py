"""Working hours in a team's zone: across midnight, DST, holidays; the SLA clock's
business-seconds arithmetic (property tests)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from hub.routing import hours
from hub.routing.hours import HoursError, business_seconds, is_open, next_opening

UTC = timezone.utc
OFFICE = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
NIGHT = {"fri": [["22:00", "02:00"]]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_office_hours_in_the_teams_zone():
    # 2026-12-07 is a Monday; Moscow is UTC+3 all year.
    assert is_open(OFFICE, [], "Europe/Moscow", at("2026-12-07T06:00:00+00:00"))  # 09:00 Moscow
    assert not is_open(OFFICE, [], "Europe/Moscow", at("2026-12-07T05:59:00+00:00"))
    assert not is_open(OFFICE, [], "Europe/Moscow", at("2026-12-07T15:00:00+00:00"))  # 18:00 Moscow: closed
    assert not is_open(OFFICE, [], "Europe/Moscow", at("2026-12-12T10:00:00+00:00"))  # Saturday


def test_an_interval_past_midnight_belongs_to_the_day_it_starts():
    assert is_open(NIGHT, [], "UTC", at("2026-12-11T23:00:00+00:00"))  # Friday night
    assert is_open(NIGHT, [], "UTC", at("2026-12-12T01:59:00+00:00"))  # Saturday early: still Friday's
    assert not is_open(NIGHT, [], "UTC", at("2026-12-12T02:00:00+00:00"))
    assert not is_open(NIGHT, [], "UTC", at("2026-12-12T23:00:00+00:00"))  # Saturday night: closed
    assert not is_open(NIGHT, [], "UTC", at("2026-12-11T01:00:00+00:00"))  # Thursday's night: closed


def test_holidays_close_the_whole_day_even_the_part_run_into_from_the_day_before():
    assert not is_open(OFFICE, ["2026-12-08"], "UTC", at("2026-12-08T10:00:00+00:00"))
    assert is_open(OFFICE, ["2026-12-08"], "UTC", at("2026-12-09T10:00:00+00:00"))
    assert is_open(NIGHT, ["2026-12-12"], "UTC", at("2026-12-11T23:30:00+00:00"))
    assert not is_open(NIGHT, ["2026-12-12"], "UTC", at("2026-12-12T00:30:00+00:00"))
    assert not is_open({}, ["2026-12-08"], "UTC", at("2026-12-08T10:00:00+00:00"))
    assert is_open({}, [], "UTC", at("2026-12-08T10:00:00+00:00")), "no hours: always open"


def test_next_opening():
    friday_evening = at("2026-12-11T19:00:00+00:00")
    assert next_opening(OFFICE, [], "UTC", friday_evening) == at("2026-12-14T09:00:00+00:00")
    assert next_opening(OFFICE, ["2026-12-14"], "UTC", friday_evening) == at("2026-12-15T09:00:00+00:00")
    inside = at("2026-12-14T10:00:00+00:00")
    assert next_opening(OFFICE, [], "UTC", inside) == inside
    assert next_opening({}, ["2026-12-14"], "UTC", at("2026-12-14T10:00:00+00:00")) == at("2026-12-15T00:00:00+00:00")


def test_daylight_saving_days_are_counted_in_local_time():
    # Berlin, 2026-03-29: clocks go from 02:00 to 03:00; 09-18 local is still nine hours.
    sunday = {"sun": [["09:00", "18:00"]]}
    start, end = at("2026-03-29T00:00:00+00:00"), at("2026-03-30T00:00:00+00:00")
    assert business_seconds(sunday, [], "Europe/Berlin", start, end) == 9 * 3600
    assert is_open(sunday, [], "Europe/Berlin", at("2026-03-29T07:00:00+00:00"))  # 09:00 CEST
    assert not is_open(sunday, [], "Europe/Berlin", at("2026-03-29T06:59:00+00:00"))  # 08:59 CEST


def test_business_seconds_of_a_week():
    monday = at("2026-12-07T00:00:00+00:00")
    assert business_seconds(OFFICE, [], "UTC", monday, monday + timedelta(days=7)) == 5 * 9 * 3600
    assert business_seconds(OFFICE, ["2026-12-08"], "UTC", monday, monday + timedelta(days=7)) == 4 * 9 * 3600
    friday_17 = at("2026-12-11T17:00:00+00:00")
    assert business_seconds(OFFICE, [], "UTC", friday_17, at("2026-12-14T09:30:00+00:00")) == 90 * 60


@pytest.mark.parametrize("bad, field", [
    ({"monday": [["09:00", "18:00"]]}, "'monday' is not a weekday"),
    ({"mon": [["9:00", "18:00"]]}, r"hours.mon\[0\]: '9:00'"),
    ({"mon": [["nine", "18:00"]]}, "is not HH:MM"),
    ({"mon": [["09:00", "25:00"]]}, "not a time of day"),
    ({"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}, "overlap"),
    ({"sun": [["22:00", "03:00"]], "mon": [["02:00", "05:00"]]}, "overlap"),
    ({"mon": "09-18"}, "expected a list"),
    ({"mon": [["24:00", "01:00"]]}, "cannot start at 24:00"),
    ([], "expected an object"),
])
def test_bad_hours_are_refused_by_name(bad, field):
    with pytest.raises(HoursError, match=field):
        hours.spans(bad)


def test_bad_holidays_and_zones():
    with pytest.raises(HoursError, match=r"holidays\[1\]"):
        hours.holiday_dates(["2026-12-31", "31.12.2026"])
    with pytest.raises(HoursError, match="unknown time zone"):
        hours.zone("Mars/Olympus")


moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                       timezones=st.just(UTC))
zones = st.sampled_from(["UTC", "Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
tables = st.sampled_from([OFFICE, NIGHT, {}, {"sat": [["10:00", "14:00"]], "sun": [["23:00", "00:30"]]}])
holiday_lists = st.lists(st.dates(min_value=datetime(2025, 1, 1).date(), max_value=datetime(2028, 12, 31).date())
                         .map(lambda d: d.isoformat()), max_size=4)


@settings(max_examples=150, deadline=None)
@given(table=tables, tz=zones, holidays=holiday_lists, a=moments, b=moments, c=moments)
def test_business_seconds_add_up_and_never_exceed_the_elapsed_time(table, tz, holidays, a, b, c):
    a, b, c = sorted((a, b, c))
    ab = business_seconds(table, holidays, tz, a, b)
    bc = business_seconds(table, holidays, tz, b, c)
    assert 0 <= ab <= (b - a).total_seconds()
    assert abs(business_seconds(table, holidays, tz, a, c) - (ab + bc)) < 1e-6
    if not table and not holidays:
        assert ab == (b - a).total_seconds()


@settings(max_examples=150, deadline=None)
@given(table=tables, tz=zones, holidays=holiday_lists, moment=moments)
def test_the_clock_runs_exactly_when_the_team_is_open(table, tz, holidays, moment):
    minute = business_seconds(table, holidays, tz, moment, moment + timedelta(seconds=1))
    assert minute == (1.0 if is_open(table, holidays, tz, moment) else 0.0)
    opening = next_opening(table, holidays, tz, moment)
    if opening is not None:
        assert opening >= moment and is_open(table, holidays, tz, opening)
        if opening > moment:
            assert business_seconds(table, holidays, tz, moment, opening) == 0
