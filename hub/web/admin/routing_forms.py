"""The team and rule forms: plain inputs (hours as "09:00-18:00, 20:00-22:00" per
weekday, SLA targets in minutes, lists comma separated) turned into what
hub.routing.store saves, and the store's errors put back beside the inputs they are about."""
from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from hub.models import RoutingRule, Team
from hub.models.routing import STRATEGIES
from hub.routing.hours import WEEKDAYS

STRATEGY_LABELS = {
    "round_robin": _l("Round robin: the next free member in turn"),
    "least_busy": _l("Least busy: fewest open chats"),
    "sticky": _l("Sticky: the customer's previous operator"),
    "first_responder": _l("First responder: offered to all, the first reply takes it"),
}
WEEKDAY_LABELS = {"mon": _l("Monday"), "tue": _l("Tuesday"), "wed": _l("Wednesday"), "thu": _l("Thursday"),
                  "fri": _l("Friday"), "sat": _l("Saturday"), "sun": _l("Sunday")}
REASONS = {"no_operator": _l("no operator free"), "off_hours": _l("outside the hours"),
           "waiting_for_operator": _l("waiting for an operator"), "offered": _l("offered to the team")}
LEAD_KINDS = {"tracked_link": _l("Tracked link"), "ad": _l("Click-to-WhatsApp ad"), "direct": _l("Direct")}
# SLA targets: form field (minutes) -> policy key (seconds)
SLA_FIELDS = {"first_response_minutes": "first_response_seconds", "next_response_minutes": "next_response_seconds",
              "resolution_minutes": "resolution_seconds", "warn_before_minutes": "warn_before_seconds"}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_PREFIX = re.compile(r"^([a-z_]+)(?:\.([a-z_]+))?")


def _minutes_field(label: Any, help_text: Any = "") -> fields.Float:
    return fields.Float(allow_none=True, load_default=None, validate=validate.Range(min=1 / 60, max=366 * 1440),
                        metadata={"label": label, "help": help_text})


def team_form(supervisors: list[tuple[str, str]]) -> type[Schema]:
    class TeamForm(Schema):
        name = fields.String(required=True, validate=validate.Length(1, 200), metadata={"label": _l("Name")})
        strategy = fields.String(required=True, validate=validate.OneOf(STRATEGIES), metadata={
            "label": _l("Strategy"), "choices": [(s, STRATEGY_LABELS[s]) for s in STRATEGIES]})
        time_zone = fields.String(required=True, validate=validate.Length(1, 64), metadata={
            "label": _l("Time zone"), "placeholder": "Europe/Moscow",
            "help": _l("IANA name; the hours and holidays are in it.")})
        sticky_wait_seconds = fields.Integer(load_default=0, validate=validate.Range(0, 86400), metadata={
            "label": _l("Sticky wait, seconds"),
            "help": _l("Sticky: how long the previous operator is waited for before anyone else.")})
        holidays = fields.List(fields.String(), load_default=list, metadata={
            "label": _l("Holidays"), "placeholder": "2027-01-01",
            "help": _l("One date (YYYY-MM-DD) per line: closed all day.")})
        off_hours_reply = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4096),
                                        metadata={"label": _l("Off-hours reply"), "multiline": True, "help": _l(
                                            "Sent once when a chat arrives outside the hours (only while the "
                                            "channel lets free text go). Empty: none.")})
        first_response_minutes = _minutes_field(_l("First response, minutes"),
                                                _l("Business minutes until the first reply. Empty: no clock."))
        next_response_minutes = _minutes_field(_l("Next response, minutes"),
                                               _l("Business minutes until each later reply."))
        resolution_minutes = _minutes_field(_l("Resolution, minutes"),
                                            _l("All the customer's waits together."))
        warn_before_minutes = _minutes_field(_l("Warn before, minutes"),
                                             _l("An SLA warning this long before a target."))
        reassign_on_breach = fields.Boolean(load_default=False, metadata={
            "label": _l("Reassign on breach: a missed response goes to another free member")})
        supervisor_id = fields.Integer(allow_none=True, load_default=None, metadata={
            "label": _l("Supervisor"), "choices": supervisors,
            "help": _l("Named in SLA warnings and breaches.")})
    return TeamForm


def rule_form(targets: list[tuple[str, str]]) -> type[Schema]:
    class RuleForm(Schema):
        name = fields.String(load_default="", validate=validate.Length(max=200), metadata={"label": _l("Name")})
        target = fields.String(required=True, metadata={
            "label": _l("Send to"), "choices": targets, "help": _l("A team (routed by its strategy) or an operator.")})
        position = fields.Integer(load_default=0, validate=validate.Range(0, 1_000_000), metadata={
            "label": _l("Position"), "help": _l("Rules are tried from the lowest position; the first that holds wins.")})
        enabled = fields.Boolean(load_default=True, metadata={"label": _l("Enabled")})
        utm_source = fields.String(load_default="", metadata={"label": _l("UTM source"), "placeholder": "google, yandex"})
        utm_medium = fields.String(load_default="", metadata={"label": _l("UTM medium"), "placeholder": "cpc"})
        utm_campaign = fields.String(load_default="", metadata={"label": _l("UTM campaign"), "placeholder": "spring"})
        keywords = fields.String(load_default="", metadata={
            "label": _l("Keywords"), "placeholder": "price, цена",
            "help": _l("Comma separated: any of them in the first message (case does not matter).")})
        contact_name = fields.String(load_default="", metadata={"label": _l("Contact name contains")})
        hours_from = fields.String(load_default="", metadata={"label": _l("From (time of day)"), "placeholder": "09:00"})
        hours_to = fields.String(load_default="", metadata={
            "label": _l("To (time of day)"), "placeholder": "18:00",
            "help": _l("An end not after the start runs past midnight.")})
        time_zone = fields.String(load_default="", metadata={"label": _l("Time zone of the times"),
                                                             "placeholder": "UTC"})
    return RuleForm


# -- hours --------------------------------------------------------------------------------------

def _time(text: str) -> str | None:
    found = _TIME.match(text.strip())
    if not found:
        return None
    return f"{int(found.group(1)):02d}:{found.group(2)}"


def parse_day(text: str) -> tuple[list[list[str]], str | None]:
    """"09:00-18:00, 20:00-22:00" -> [["09:00", "18:00"], ["20:00", "22:00"]]; or an error."""
    intervals = []
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        ends = re.split(r"\s*[-–—]\s*", part.strip())
        start, end = (_time(ends[0]), _time(ends[1])) if len(ends) == 2 else (None, None)
        if start is None or end is None:
            return [], str(_l("%(part)s: write intervals as 09:00-18:00, separated by commas.", part=part.strip()))
        intervals.append([start, end])
    return intervals, None


def format_day(intervals: list[list[str]] | None) -> str:
    return ", ".join(f"{a}-{b}" for a, b in intervals or [])


def read_hours(form: Any) -> tuple[dict[str, list[list[str]]], dict[str, list[str]]]:
    hours, errors = {}, {}
    for day in WEEKDAYS:
        intervals, problem = parse_day(form.get(f"hours_{day}", ""))
        if problem:
            errors[f"hours_{day}"] = [problem]
        elif intervals:
            hours[day] = intervals
    return hours, errors


# -- teams --------------------------------------------------------------------------------------

def _minutes_text(seconds: Any) -> str:
    if not seconds:
        return ""
    return f"{seconds / 60:g}"


def team_values(team: Team, members: list[int]) -> dict[str, Any]:
    """What the form shows for a stored team."""
    policy = team.sla or {}
    values: dict[str, Any] = {
        "name": team.name, "strategy": team.strategy, "time_zone": team.time_zone,
        "sticky_wait_seconds": team.sticky_wait_seconds, "holidays": list(team.holidays or []),
        "off_hours_reply": team.off_hours_reply or "", "reassign_on_breach": bool(policy.get("reassign_on_breach")),
        "supervisor_id": str(policy["supervisor_id"]) if policy.get("supervisor_id") else "",
        **{name: _minutes_text(policy.get(key)) for name, key in SLA_FIELDS.items()},
        **{f"hours_{day}": format_day((team.hours or {}).get(day)) for day in WEEKDAYS},
    }
    values["channel_ids"] = list(team.channel_ids or [])
    values["member_ids"] = members
    return values


def team_data(loaded: dict[str, Any], hours: dict[str, Any], channel_ids: list[int],
              member_ids: list[int]) -> dict[str, Any]:
    """The form's values as save_team's data."""
    policy: dict[str, Any] = {key: max(1, round(loaded[name] * 60)) for name, key in SLA_FIELDS.items()
                              if loaded.get(name)}
    if loaded.get("reassign_on_breach"):
        policy["reassign_on_breach"] = True
    if loaded.get("supervisor_id"):
        policy["supervisor_id"] = loaded["supervisor_id"]
    reply = (loaded.get("off_hours_reply") or "").strip()
    return {"name": loaded["name"].strip(), "strategy": loaded["strategy"], "time_zone": loaded["time_zone"].strip(),
            "hours": hours, "holidays": loaded.get("holidays") or [], "channel_ids": channel_ids,
            "member_ids": member_ids, "sticky_wait_seconds": loaded.get("sticky_wait_seconds") or 0,
            "off_hours_reply": reply or None, "sla": policy}


def team_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """save_team's errors under the form's inputs: hours.mon[0] -> hours_mon,
    sla.first_response_seconds -> first_response_minutes, the supervisor's -> supervisor_id."""
    out: dict[str, list[str]] = {}
    sla_names = {key: name for name, key in SLA_FIELDS.items()}
    for key, messages in errors.items():
        for message in messages:
            name = key
            if key == "hours":
                day = re.match(r"^hours\.([a-z]{3})\b", message)
                name = f"hours_{day.group(1)}" if day and day.group(1) in WEEKDAYS else "hours"
            elif key == "sla":
                sub = re.match(r"^sla\.([a-z_]+)", message)
                if sub and sub.group(1) in sla_names:
                    name = sla_names[sub.group(1)]
                elif sub and sub.group(1) == "reassign_on_breach":
                    name = "reassign_on_breach"
                else:
                    name = "supervisor_id"  # a supervisor who cannot take chats, or an unknown key
            out.setdefault(name, []).append(message)
    return out


# -- rules --------------------------------------------------------------------------------------

def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


RULE_CONDITION_FIELDS = {"channel_ids": "channel_ids", "lead_kinds": "lead_kinds", "utm_source": "utm_source",
                         "utm_medium": "utm_medium", "utm_campaign": "utm_campaign", "keywords": "keywords",
                         "contact": "contact_name", "hours": "hours_from", "time_zone": "time_zone"}


def rule_values(rule: RoutingRule) -> dict[str, Any]:
    c = rule.conditions or {}
    hours = c.get("hours") or ["", ""]
    return {"name": rule.name, "position": rule.position, "enabled": rule.enabled,
            "target": f"team:{rule.team_id}" if rule.team_id else f"user:{rule.user_id}",
            "utm_source": ", ".join(c.get("utm_source", [])), "utm_medium": ", ".join(c.get("utm_medium", [])),
            "utm_campaign": ", ".join(c.get("utm_campaign", [])), "keywords": ", ".join(c.get("keywords", [])),
            "contact_name": (c.get("contact") or {}).get("name", ""), "hours_from": hours[0], "hours_to": hours[1],
            "time_zone": c.get("time_zone", ""), "channel_ids": list(c.get("channel_ids", [])),
            "lead_kinds": list(c.get("lead_kinds", []))}


def rule_data(loaded: dict[str, Any], channel_ids: list[int], lead_kinds: list[str],
              current: RoutingRule | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """save_rule's data from the form; errors the form itself finds (a target not chosen,
    one time of day without the other)."""
    errors: dict[str, list[str]] = {}
    kind, _sep, ident = loaded["target"].partition(":")
    target = {"team_id": None, "user_id": None}
    if kind in ("team", "user") and ident.isdigit():
        target[f"{kind}_id"] = int(ident)
    else:
        errors["target"] = [str(_l("Choose a team or an operator."))]
    conditions: dict[str, Any] = {}
    if channel_ids:
        conditions["channel_ids"] = channel_ids
    if lead_kinds:
        conditions["lead_kinds"] = lead_kinds
    for key in ("utm_source", "utm_medium", "utm_campaign", "keywords"):
        if _listed(loaded.get(key, "")):
            conditions[key] = _listed(loaded[key])
    # Contact conditions the form has no input for (set through the API) are kept.
    contact = {k: v for k, v in ((current.conditions or {}).get("contact") or {}).items() if k != "name"} \
        if current is not None else {}
    if loaded.get("contact_name", "").strip():
        contact["name"] = loaded["contact_name"].strip()
    if contact:
        conditions["contact"] = contact
    start, end = loaded.get("hours_from", "").strip(), loaded.get("hours_to", "").strip()
    if start or end:
        if not (start and end):
            errors["hours_from"] = [str(_l("Give both times, or neither."))]
        else:
            conditions["hours"] = [_time(start) or start, _time(end) or end]
    if loaded.get("time_zone", "").strip():
        conditions["time_zone"] = loaded["time_zone"].strip()
    return {"name": loaded.get("name", "").strip(), "position": loaded.get("position") or 0,
            "enabled": bool(loaded.get("enabled")), "conditions": conditions, **target}, errors


def rule_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """save_rule's errors under the form's inputs (conditions.keywords -> keywords)."""
    out: dict[str, list[str]] = {}
    for key, messages in errors.items():
        for message in messages:
            name = "target" if key in ("team_id", "user_id") else key
            if key == "conditions":
                found = _PREFIX.match(message)
                sub = found.group(2) if found else None
                name = RULE_CONDITION_FIELDS.get(sub or "", "_schema")
            out.setdefault(name, []).append(message)
    return out


def summary(conditions: dict[str, Any], channel_names: dict[int, str]) -> list[str]:
    """A rule's conditions in a few words each, for the list."""
    out = []
    for key, value in (conditions or {}).items():
        if key == "channel_ids":
            out.append(", ".join(channel_names.get(v, f"#{v}") for v in value))
        elif key == "contact":
            out.extend(f"{k} ∋ {v}" for k, v in value.items())
        elif key == "hours":
            out.append(f"{value[0]}–{value[1]} {conditions.get('time_zone', 'UTC')}")
        elif key == "time_zone":
            continue
        else:
            out.append(f"{key}: {', '.join(map(str, value))}")
    return out
