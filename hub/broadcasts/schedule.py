"""When a broadcast may send: from its start, on allowed weekdays, inside a daily window,
all in its own time zone. Pure."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class ScheduleProblem(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def _minutes(text: str, field: str) -> int:
    if not isinstance(text, str) or not _HHMM.match(text):
        raise ScheduleProblem(f"{field} must be HH:MM (00:00 to 24:00), not {text!r}", field=field)
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def validate(*, start_at: datetime | None, timezone: str, allowed_days: list[int], window_start: str,
             window_end: str, now: datetime) -> None:
    """Refuses, naming the field: a start in the past, an unknown zone, no day, an empty window."""
    if start_at is not None:
        if start_at.tzinfo is None:
            raise ScheduleProblem("start_at needs a time zone offset (e.g. 2026-12-08T09:00:00+03:00)",
                                  field="start_at")
        if start_at < now - timedelta(minutes=1):
            raise ScheduleProblem(f"start_at {start_at.isoformat()} is in the past", field="start_at")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleProblem(f"unknown time zone {timezone!r} (e.g. Europe/Moscow)", field="timezone") from None
    if not allowed_days or any(isinstance(d, bool) or d not in range(1, 8) for d in allowed_days):
        raise ScheduleProblem("allowed_days must list ISO weekdays, 1 (Monday) to 7 (Sunday)",
                              field="allowed_days")
    if _minutes(window_start, "window_start") >= _minutes(window_end, "window_end"):
        raise ScheduleProblem("window_end must come after window_start", field="window_end")


def may_send(now: datetime, *, timezone: str, allowed_days: list[int], window_start: str,
             window_end: str) -> bool:
    local = now.astimezone(ZoneInfo(timezone))
    if local.isoweekday() not in allowed_days:
        return False
    minute = local.hour * 60 + local.minute
    return _minutes(window_start, "window_start") <= minute < _minutes(window_end, "window_end")


def next_opening(now: datetime, *, timezone: str, allowed_days: list[int], window_start: str,
                 window_end: str) -> datetime | None:
    """When sending may next start (now when it may now); None if never within a week."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = _minutes(window_start, "window_start")
    for day in range(8):
        date = (local + timedelta(days=day)).date()
        if date.isoweekday() not in allowed_days:
            continue
        opening = datetime.combine(date, time(start // 60, start % 60), zone)
        if day == 0 and may_send(now, timezone=timezone, allowed_days=allowed_days, window_start=window_start,
                                 window_end=window_end):
            return now
        if opening >= local:
            return opening
    return None
