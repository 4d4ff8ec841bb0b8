"""The reports page's query string: a period (a preset, custom dates, or an exact slot
of a chart) and the filters hub.reports supports, read into one ReportQuery or refused
with a ReportInputError that says what is wrong (400: unreadable, 422: readable but
impossible or unknown)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping

from flask_babel import gettext as _, lazy_gettext as _l

from hub.models import Channel, Team, User
from hub.reports.rows import Filters
from hub.routing.hours import zone

PRESETS = {
    "today": _l("Today"),
    "7d": _l("Last 7 days"),
    "30d": _l("Last 30 days"),
    "this_month": _l("This month"),
    "last_month": _l("Last month"),
    "custom": _l("Custom dates"),
}
DEFAULT_PRESET = "7d"
MAX_DAYS = 366
MISSED_MINUTES = (1, 7 * 24 * 60)
YEARS = (1970, 9000)
MAX_ID = 2**31 - 1  # an integer primary key on every backend
NONE = "none"  # drill-down only: conversations with no operator / no team


class ReportInputError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ReportQuery:
    preset: str
    first_day: date
    last_day: date  # inclusive
    start: datetime
    end: datetime  # exclusive
    channel_id: int | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    no_team: bool = False
    no_assignee: bool = False
    missed_minutes: int = 15
    exact: bool = False  # start/end given as instants (a chart's slot)
    source: str | None = None  # as by_source counts it
    time_zone: str = "UTC"  # the days' zone: the team's, when one is chosen

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def filters(self, *, previous: bool = False) -> Filters:
        shift = self.span if previous else timedelta(0)
        return Filters(start=self.start - shift, end=self.end - shift, channel_id=self.channel_id,
                       team_id=self.team_id, assignee_id=self.assignee_id, missed_seconds=self.missed_minutes * 60,
                       source=self.source)

    def args(self, **overrides: Any) -> dict[str, Any]:
        """The query string that reproduces this query (links keep period and filters)."""
        out: dict[str, Any] = {}
        if self.exact:
            out.update(start=self.start.isoformat(), end=self.end.isoformat())
        else:
            out.update({"from": self.first_day.isoformat(), "to": self.last_day.isoformat()})
        for key in ("channel_id", "team_id", "assignee_id"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.no_team:
            out["team_id"] = NONE
        if self.no_assignee:
            out["assignee_id"] = NONE
        if self.missed_minutes != 15:
            out["missed_minutes"] = self.missed_minutes
        if self.source:
            out["source"] = self.source
        out.update(overrides)
        return {k: v for k, v in out.items() if v is not None}

    def slot(self, start: datetime, end: datetime) -> "ReportQuery":
        return replace(self, start=start, end=end, exact=True)


def preset_days(name: str, today: date) -> tuple[date, date]:
    """First and last day (inclusive) of a preset period ending today."""
    if name == "today":
        return today, today
    if name == "7d":
        return today - timedelta(days=6), today
    if name == "30d":
        return today - timedelta(days=29), today
    if name == "this_month":
        return today.replace(day=1), today
    if name == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise KeyError(name)


def _midnight(day: date, time_zone: str = "UTC") -> datetime:
    """The day's local midnight in `time_zone`, in UTC: a team's day starts at its own
    midnight."""
    return datetime.combine(day, time(0), tzinfo=zone(time_zone)).astimezone(timezone.utc)


def _source(args: Mapping[str, str]) -> str | None:
    text = (args.get("source") or "").strip()
    if not text:
        return None
    if len(text) > 200 or not text.isprintable():
        raise ReportInputError(400, _("'%(value)s' is not a source name.", value=text[:40]))
    return text


def _date(args: Mapping[str, str], key: str) -> date:
    text = (args.get(key) or "").strip()
    if not text:
        raise ReportInputError(400, _("Give both dates of a custom period ('%(field)s' is empty).", field=key))
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise ReportInputError(400, _("'%(value)s' is not a date (YYYY-MM-DD) in '%(field)s'.",
                                      value=text[:40], field=key)) from None
    return _in_range(value, text, key)


def _in_range(value: Any, text: str, key: str) -> Any:
    """Far from the edges of the calendar, so the period before it can be computed."""
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise ReportInputError(422, _("'%(value)s' in '%(field)s' is out of range (years %(low)s-%(high)s).",
                                      value=text[:40], field=key, low=YEARS[0], high=YEARS[1]))
    return value


def _instant(args: Mapping[str, str], key: str) -> datetime:
    text = (args.get(key) or "").strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportInputError(400, _("'%(value)s' is not a date and time in '%(field)s'.",
                                      value=text[:40], field=key)) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return _in_range(value, text, key).astimezone(timezone.utc)


def _id(args: Mapping[str, str], key: str, *, allow_none: bool) -> int | str | None:
    text = (args.get(key) or "").strip()
    if not text:
        return None
    if allow_none and text == NONE:
        return NONE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise ReportInputError(400, _("'%(value)s' is not an id in '%(field)s'.", value=text[:40], field=key))
    return int(text)


def read_query(args: Mapping[str, str], session: Any, *, now: datetime, allow_none: bool = False) -> ReportQuery:
    """The period and filters of a request, checked against the database (an id that
    names nothing is refused, not silently ignored). With a team chosen, days (and
    "today") are the team's, from its local midnight; else UTC days."""
    ids: dict[str, Any] = {}
    time_zone = "UTC"
    for key, model, label in (("channel_id", Channel, _l("number")), ("team_id", Team, _l("team")),
                              ("assignee_id", User, _l("operator"))):
        value = _id(args, key, allow_none=allow_none and key != "channel_id")
        row = session.get(model, value) if isinstance(value, int) else None
        if isinstance(value, int) and row is None:
            raise ReportInputError(422, _("There is no %(what)s with id %(id)s.", what=label, id=value))
        if key == "team_id" and row is not None:
            time_zone = row.time_zone or "UTC"
        ids[key] = value
    if args.get("start") or args.get("end"):
        start, end = _instant(args, "start"), _instant(args, "end")
        local = zone(time_zone)
        preset, exact = "custom", True
        first_day, last_day = start.astimezone(local).date(), (end - timedelta(microseconds=1)).astimezone(local).date()
    else:
        preset = (args.get("period") or "").strip() or ("custom" if args.get("from") or args.get("to")
                                                        else DEFAULT_PRESET)
        if preset not in PRESETS:
            raise ReportInputError(400, _("Unknown period '%(value)s'.", value=preset[:40]))
        if preset == "custom":
            first_day, last_day = _date(args, "from"), _date(args, "to")
        else:
            first_day, last_day = preset_days(preset, now.astimezone(zone(time_zone)).date())
        start, end, exact = _midnight(first_day, time_zone), _midnight(last_day + timedelta(days=1), time_zone), False
    if end <= start:
        raise ReportInputError(422, _("The period ends before it starts: 'from' must not be after 'to'."))
    if end - start > timedelta(days=MAX_DAYS):
        raise ReportInputError(422, _("A period is at most %(days)s days.", days=MAX_DAYS))
    missed_text = (args.get("missed_minutes") or "").strip() or "15"
    if not (missed_text.isascii() and missed_text.isdigit()):
        raise ReportInputError(400, _("'%(value)s' is not a number of minutes.", value=missed_text[:40]))
    missed = int(missed_text)
    if not MISSED_MINUTES[0] <= missed <= MISSED_MINUTES[1]:
        raise ReportInputError(422, _("Missed after: between %(low)s and %(high)s minutes.",
                                      low=MISSED_MINUTES[0], high=MISSED_MINUTES[1]))
    return ReportQuery(
        preset=preset, first_day=first_day, last_day=last_day, start=start, end=end, exact=exact,
        channel_id=ids["channel_id"], team_id=ids["team_id"] if ids["team_id"] != NONE else None,
        assignee_id=ids["assignee_id"] if ids["assignee_id"] != NONE else None,
        no_team=ids["team_id"] == NONE, no_assignee=ids["assignee_id"] == NONE, missed_minutes=missed,
        source=_source(args), time_zone=time_zone)
