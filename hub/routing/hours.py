"""Working hours: a team's weekly intervals in its own time zone, and its holidays.

Hours are {"mon": [["09:00", "18:00"], ...], ...}. An interval whose end is not after
its start runs past midnight into the next day (["22:00", "02:00"]); "24:00" ends a day.
A weekday not named is closed; no hours at all means always open. A holiday (an ISO
date in the team's zone) closes the whole day, including the part of an interval that
runs into it from the day before.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Hours = dict[str, list[list[str]]]


class HoursError(ValueError):
    """Hours, holidays or a time zone that cannot be used; the message says which."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise HoursError(f"unknown time zone {name!r}") from None


def _minutes(value: str, where: str) -> int:
    try:
        hh, mm = value.split(":")
        h, m = int(hh), int(mm)
    except (AttributeError, ValueError):
        raise HoursError(f"{where}: {value!r} is not HH:MM") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m) or len(hh) != 2 or len(mm) != 2:
        raise HoursError(f"{where}: {value!r} is not a time of day")
    return h * 60 + m


def spans(hours: Hours) -> list[tuple[int, int, int]]:
    """Validated (weekday, start minute, end minute) with end > start, where an interval
    past midnight ends beyond 1440 on its own weekday. Raises HoursError."""
    if not isinstance(hours, dict):
        raise HoursError("hours: expected an object of weekdays")
    out = []
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            raise HoursError(f"hours: {day!r} is not a weekday ({', '.join(WEEKDAYS)})")
        if not isinstance(intervals, list):
            raise HoursError(f"hours.{day}: expected a list of [start, end]")
        for i, interval in enumerate(intervals):
            where = f"hours.{day}[{i}]"
            if not (isinstance(interval, list) and len(interval) == 2):
                raise HoursError(f"{where}: expected [start, end]")
            start, end = _minutes(interval[0], where), _minutes(interval[1], where)
            if start == 1440:
                raise HoursError(f"{where}: an interval cannot start at 24:00")
            if end == start:
                raise HoursError(f"{where}: start and end are the same (00:00-24:00 is the whole day)")
            if end < start:
                end += 1440  # past midnight
            out.append((WEEKDAYS.index(day), start, end))
    week = sorted((d * 1440 + s, d * 1440 + e) for d, s, e in out)
    wrapped = week + [(s + 7 * 1440, e + 7 * 1440) for s, e in week]
    for (s1, e1), (s2, _e2) in zip(wrapped, wrapped[1:]):
        if s2 < e1:
            raise HoursError("hours: intervals overlap")
    return out


def holiday_dates(holidays: list[str]) -> set[date]:
    if not isinstance(holidays, list):
        raise HoursError("holidays: expected a list of dates")
    out = set()
    for i, value in enumerate(holidays):
        try:
            out.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise HoursError(f"holidays[{i}]: {value!r} is not a date (YYYY-MM-DD)") from None
    return out


def _open_intervals(hours: Hours, holidays: set[date], tz: ZoneInfo, around: datetime,
                    days: int) -> list[tuple[datetime, datetime]]:
    """Open intervals (in UTC) of the days (in `tz`) from the day before `around` for
    `days` days, holidays cut out."""
    local = around.astimezone(tz)
    first = local.date() - timedelta(days=1)
    out = []
    table = spans(hours)
    for offset in range(days + 1):
        day = first + timedelta(days=offset)
        for weekday, start, end in table:
            if weekday != day.weekday():
                continue
            midnight = datetime.combine(day, time(0), tzinfo=tz)
            lo, hi = midnight + timedelta(minutes=start), midnight + timedelta(minutes=end)
            out.extend(_without_holidays(lo, hi, holidays, tz))
    return sorted(out)


def _without_holidays(lo: datetime, hi: datetime, holidays: set[date], tz: ZoneInfo):
    pieces, cursor = [], lo
    while cursor < hi:
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), time(0), tzinfo=tz)
        end = min(hi, next_midnight)
        if cursor.date() not in holidays:  # in UTC: differences of same-zone times are wall-clock ones
            pieces.append((cursor.astimezone(timezone.utc), end.astimezone(timezone.utc)))
        cursor = end
    return pieces


def is_open(hours: Hours, holidays: list[str], time_zone: str, now: datetime) -> bool:
    if not hours:
        return not holidays or now.astimezone(zone(time_zone)).date() not in holiday_dates(holidays)
    tz = zone(time_zone)
    return any(lo <= now < hi for lo, hi in _open_intervals(hours, holiday_dates(holidays), tz, now, 2))


def next_opening(hours: Hours, holidays: list[str], time_zone: str, now: datetime) -> datetime | None:
    """`now` when open, else when the team next opens (None: never, within a year)."""
    if is_open(hours, holidays, time_zone, now):
        return now
    tz = zone(time_zone)
    days = holiday_dates(holidays)
    if not hours:  # always open but for holidays: the next day that is not one
        day = now.astimezone(tz).date()
        for _ in range(366):
            day += timedelta(days=1)
            if day not in days:
                return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)
        return None
    for lo, _hi in _open_intervals(hours, days, tz, now, 370):
        if lo > now:
            return lo
    return None


def business_seconds(hours: Hours, holidays: list[str], time_zone: str, start: datetime, end: datetime) -> float:
    """Seconds between `start` and `end` that fall in open hours (SLA clocks)."""
    if end <= start:
        return 0.0
    if not hours and not holidays:
        return (end - start).total_seconds()
    tz = zone(time_zone)
    days = holiday_dates(holidays)
    if not hours:
        intervals = []
        day = start.astimezone(tz).date()
        while datetime.combine(day, time(0), tzinfo=tz) < end:
            lo = datetime.combine(day, time(0), tzinfo=tz)
            hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
            if day not in days:
                intervals.append((lo.astimezone(timezone.utc), hi.astimezone(timezone.utc)))
            day += timedelta(days=1)
    else:
        span_days = (end - start).days + 2
        intervals = _open_intervals(hours, days, tz, start, span_days)
    total = timedelta(0)  # summed exactly, converted once
    for lo, hi in intervals:
        lo, hi = max(lo, start), min(hi, end)
        if hi > lo:
            total += hi - lo
    return total.total_seconds()
