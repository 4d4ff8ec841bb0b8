"""Saving teams, rules and operators' settings: checked whole before anything is written,
so a bad field is refused by name and nothing is half-saved (shared by API and admin)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.models import Channel, RoutingRule, Team, TeamMember, User
from hub.models.routing import STRATEGIES
from hub.routing import hours, known, rules, sla


class InvalidRouting(ValueError):
    """{field: [messages]}: what is wrong, field by field."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _operators(session: Session, user_ids: list[int], field: str, errors: dict[str, list[str]]) -> None:
    found = {uid for uid, role, active in session.execute(
        select(User.id, User.role, User.active).where(User.id.in_(user_ids)))
        if active and role != "viewer"}
    missing = [uid for uid in user_ids if uid not in found]
    if missing:
        errors.setdefault(field, []).append(
            f"no active operator or admin with id {', '.join(map(str, missing))}")


def check_team(session: Session, data: dict[str, Any], *, current: Team | None = None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    merged = {"hours": current.hours if current else {}, "holidays": current.holidays if current else [],
              "time_zone": current.time_zone if current else "UTC", **data}
    if "strategy" in data and data["strategy"] not in STRATEGIES:
        errors["strategy"] = [f"one of {', '.join(STRATEGIES)}"]
    for key, check in (("time_zone", lambda: hours.zone(merged["time_zone"])),
                       ("hours", lambda: hours.spans(merged["hours"])),
                       ("holidays", lambda: hours.holiday_dates(merged["holidays"]))):
        try:
            check()
        except hours.HoursError as exc:
            errors.setdefault(key, []).append(str(exc))
    if "sla" in data:
        try:
            sla.validate(data["sla"])
        except sla.SlaError as exc:
            errors["sla"] = [str(exc)]
        else:
            if data["sla"].get("supervisor_id"):
                _operators(session, [data["sla"]["supervisor_id"]], "sla", errors)
    if data.get("member_ids"):
        _operators(session, data["member_ids"], "member_ids", errors)
    if data.get("channel_ids"):
        known = set(session.scalars(select(Channel.id).where(Channel.id.in_(data["channel_ids"]))))
        missing = [c for c in data["channel_ids"] if c not in known]
        if missing:
            errors["channel_ids"] = [f"no channel with id {', '.join(map(str, missing))}"]
    if "name" in data:
        clash = session.scalar(select(Team.id).where(Team.name == data["name"]))
        if clash is not None and (current is None or clash != current.id):
            errors["name"] = [f"a team named {data['name']!r} already exists"]
    return errors


def save_team(session: Session, data: dict[str, Any], *, now: datetime, team: Team | None = None) -> Team:
    errors = check_team(session, data, current=team)
    if errors:
        raise InvalidRouting(errors)
    if team is None:
        team = Team(name=data["name"], created_at=now, hours={}, holidays=[], channel_ids=[], sla={})
        session.add(team)
    for key in ("name", "strategy", "time_zone", "hours", "holidays", "channel_ids", "sticky_wait_seconds",
                "off_hours_reply", "sla"):
        if key in data:
            setattr(team, key, data[key])
    team.updated_at = now
    session.flush()
    if "member_ids" in data:
        session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
        session.add_all(TeamMember(team_id=team.id, user_id=uid) for uid in dict.fromkeys(data["member_ids"]))
        session.flush()
    known.forget()
    return team


def member_ids(session: Session, team_id: int) -> list[int]:
    return list(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id)
                                .order_by(TeamMember.user_id)))


def save_rule(session: Session, data: dict[str, Any], *, now: datetime, rule: RoutingRule | None = None) -> RoutingRule:
    errors: dict[str, list[str]] = {}
    merged = {"team_id": rule.team_id if rule else None, "user_id": rule.user_id if rule else None, **data}
    if (merged["team_id"] is None) == (merged["user_id"] is None):
        errors["team_id"] = ["give exactly one target: team_id or user_id"]
    elif merged["team_id"] is not None and session.get(Team, merged["team_id"]) is None:
        errors["team_id"] = [f"no team with id {merged['team_id']}"]
    elif merged["user_id"] is not None:
        _operators(session, [merged["user_id"]], "user_id", errors)
    if "conditions" in data:
        try:
            rules.validate(data["conditions"])
        except rules.RuleError as exc:
            errors["conditions"] = [str(exc)]
    if errors:
        raise InvalidRouting(errors)
    if rule is None:
        rule = RoutingRule(created_at=now, conditions={})
        session.add(rule)
    for key in ("name", "position", "enabled", "conditions", "team_id", "user_id"):
        if key in data:
            setattr(rule, key, data[key])
    session.flush()
    known.forget()
    return rule
