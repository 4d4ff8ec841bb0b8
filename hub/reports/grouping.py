"""How a period's conversations are grouped for charts (pure): the time slots of a
period, the slot a moment falls in, and a round top for a value axis. The admin's SVG
charts (hub.web.admin) and the e-mails' PNG charts (hub.reports.charts_png) both use
these, so a report and the dashboard of the same period draw the same bars."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Iterable


def slots(start: datetime, end: datetime) -> tuple[list[datetime], timedelta]:
    """The chart's slots of a period: hours for a day or less, else days."""
    step = timedelta(hours=1) if end - start <= timedelta(days=1) else timedelta(days=1)
    out, at = [], start
    while at < end:
        out.append(at)
        at += step
    return out, step


def slot_of(start: datetime, step: timedelta, at: datetime) -> datetime:
    """The start of the slot `at` falls in."""
    return start + step * int((at - start) / step)


def slot_label(at: datetime, step: timedelta) -> str:
    return at.strftime("%H:00") if step < timedelta(days=1) else at.strftime("%m-%d")


def per_slot(start: datetime, end: datetime, moments: Iterable[datetime]) -> list[tuple[datetime, int]]:
    """(slot start, how many of the moments fall in it) for every slot of the period."""
    every, step = slots(start, end)
    counts = Counter(slot_of(start, step, at) for at in moments)
    return [(at, counts[at]) for at in every]


def nice_max(value: float) -> float:
    """A round top for the axis (1, 2, 5 times a power of ten) at or above `value`."""
    if value <= 0:
        return 1
    power = 1
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power
