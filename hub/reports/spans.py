"""A period cut into what the rollups hold: whole UTC days, then whole hours at its
edges, then the minutes left over (read from the facts themselves). Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.reports.rollups import ceil, floor

Range = tuple[datetime, datetime]


@dataclass(frozen=True)
class Spans:
    days: list[Range]  # [start, end) ranges of whole days
    hours: list[Range]  # of whole hours, outside the days
    rest: list[Range]  # what is left, shorter than an hour at each end

    @property
    def not_days(self) -> list[Range]:
        return self.hours + self.rest


def _cut(start: datetime, end: datetime, grain: str) -> tuple[list[Range], list[Range]]:
    """([the whole units], [the edges before and after]) of [start, end)."""
    low, high = ceil(start, grain), floor(end, grain)
    if low >= high:
        return [], [(start, end)] if start < end else []
    edges = [r for r in ((start, low), (high, end)) if r[0] < r[1]]
    return [(low, high)], edges


def split(start: datetime, end: datetime) -> Spans:
    days, edges = _cut(start, end, "day")
    hours, rest = [], []
    for a, b in edges:
        whole, left = _cut(a, b, "hour")
        hours += whole
        rest += left
    return Spans(days=days, hours=hours, rest=rest)
