"""When a scheduled report is due, and which period it covers (pure).

A schedule fires at `at_time` in its time zone every day, every week on `weekday`
(0 = Monday) or every month on `day_of_month` (1-28, so every month has it). Each
firing covers the period that has just ended: the day, week or month before it, from
the previous firing to this one. due() gives the latest firing at or before `now`, so
a hub that was down over a firing sends that report when it is back, once (the run
is keyed by its period), and never the ones before it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from hub.routing.hours import HoursError, zone

FREQUENCIES = ("daily", "weekly", "monthly")


class ScheduleError(ValueError):
    """A schedule that cannot fire; the message names the field."""


@dataclass(frozen=True)
class When:
    frequency: str
    at_time: str  # HH:MM
    time_zone: str = "UTC"
    weekday: int = 0
    day_of_month: int = 1


def check(when: When) -> None:
    if when.frequency not in FREQUENCIES:
        raise ScheduleError(f"frequency: one of {', '.join(FREQUENCIES)}")
    _clock_time(when.at_time)
    try:
        zone(when.time_zone)
    except HoursError as exc:
        raise ScheduleError(f"time_zone: {exc}") from None
    if not 0 <= when.weekday <= 6:
        raise ScheduleError("weekday: 0 (Monday) to 6 (Sunday)")
    if not 1 <= when.day_of_month <= 28:
        raise ScheduleError("day_of_month: 1 to 28 (a day every month has)")


def _clock_time(value: str) -> time:
    try:
        hh, mm = value.split(":")
        if len(hh) != 2 or len(mm) != 2:
            raise ValueError
        return time(int(hh), int(mm))
    except (AttributeError, ValueError):
        raise ScheduleError(f"at_time: {value!r} is not HH:MM") from None


def _months_back(day: date, months: int, day_of_month: int) -> date:
    month0 = day.year * 12 + day.month - 1 - months
    return date(month0 // 12, month0 % 12 + 1, day_of_month)


def _firing(when: When, day: date) -> datetime:
    return datetime.combine(day, _clock_time(when.at_time), tzinfo=zone(when.time_zone)).astimezone(timezone.utc)


def due(when: When, now: datetime) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the period of the latest firing at or before `now`."""
    local = now.astimezone(zone(when.time_zone)).date()
    if when.frequency == "daily":
        day = local if _firing(when, local) <= now else local - timedelta(days=1)
        return _firing(when, day - timedelta(days=1)), _firing(when, day)
    if when.frequency == "weekly":
        day = local - timedelta(days=(local.weekday() - when.weekday) % 7)
        if _firing(when, day) > now:
            day -= timedelta(days=7)
        return _firing(when, day - timedelta(days=7)), _firing(when, day)
    day = _months_back(local, 0, when.day_of_month)
    if day > local or _firing(when, day) > now:
        day = _months_back(local, 1, when.day_of_month)
    return _firing(when, _months_back(day, 1, when.day_of_month)), _firing(when, day)
