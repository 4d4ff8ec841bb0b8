"""Routing in the admin: teams (strategy, hours, holidays, channels, members, SLA) and
routing rules, saved through hub.routing.store like the API, so a bad field is refused
by name and nothing is half-saved. Admins edit; the other roles read."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Channel, Conversation, QueueEntry, RoutingRule, Team, TeamMember, User
from hub.routing import hours, known
from hub.routing.hours import WEEKDAYS
from hub.routing.store import InvalidRouting, check_team, member_ids, save_rule, save_team
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, OPERATORS, roles
from hub.web.admin.forms import fields_for, flatten_errors, read_form, submitted_values
from hub.web.admin.routing_forms import (
    LEAD_KINDS, REASONS, STRATEGY_LABELS, WEEKDAY_LABELS, format_day, read_hours, rule_data, rule_errors, rule_form,
    rule_values, summary, team_data, team_errors, team_form, team_values,
)
from hub.web.lookups import db, get_or_404


def _operators(s: Any) -> list[User]:
    return list(s.scalars(select(User).where(User.active.is_(True), User.role.in_(OPERATORS)).order_by(User.id)))


def _user_label(u: User) -> str:
    return u.name or u.email


def hours_summary(team: Team) -> list[tuple[str, str]]:
    if not team.hours:
        return [("", _("always open"))]
    return [(str(WEEKDAY_LABELS[d]), format_day(team.hours[d])) for d in WEEKDAYS if team.hours.get(d)]


@bp.get("/routing")
def routing() -> Any:
    now = utcnow()
    with db().scope() as s:
        teams = list(s.scalars(select(Team).order_by(Team.name)))
        queued = dict(s.execute(select(QueueEntry.team_id, func.count()).where(QueueEntry.team_id.is_not(None))
                                .group_by(QueueEntry.team_id)).all())
        users = {u.id: u for u in s.scalars(select(User))}
        members: dict[int, list[str]] = {}
        for team_id, user_id in s.execute(select(TeamMember.team_id, TeamMember.user_id).order_by(TeamMember.user_id)):
            if user_id in users:
                members.setdefault(team_id, []).append(_user_label(users[user_id]))
        rules = list(s.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))
        channel_names = {c.id: c.name for c in s.scalars(select(Channel))}
    rows = [{"team": t, "members": members.get(t.id, []), "queued": queued.get(t.id, 0),
             "hours": hours_summary(t), "open_now": hours.is_open(t.hours or {}, t.holidays or [], t.time_zone, now)}
            for t in teams]
    team_names = {t.id: t.name for t in teams}
    rule_rows = [{"rule": r, "conditions": summary(r.conditions or {}, channel_names),
                  "target": team_names.get(r.team_id, "") if r.team_id else
                  (_user_label(users[r.user_id]) if r.user_id in users else f"#{r.user_id}")} for r in rules]
    return render_template("admin/routing.html", teams=rows, rules=rule_rows, strategies=STRATEGY_LABELS)


@bp.get("/routing/teams/<int:team_id>")
def team(team_id: int) -> Any:
    now = utcnow()
    with db().scope() as s:
        t = get_or_404(s, Team, team_id)
        users = {u.id: u for u in s.scalars(select(User))}
        members = [users[uid] for uid in member_ids(s, t.id) if uid in users]
        channels = [c.name for c in s.scalars(select(Channel).where(Channel.id.in_(t.channel_ids or [])))]
        entries = list(s.scalars(select(QueueEntry).where(QueueEntry.team_id == t.id)
                                 .order_by(QueueEntry.queued_at, QueueEntry.conversation_id)))
        open_chats = s.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.team_id == t.id, Conversation.status == "open")) or 0
        supervisor = users.get((t.sla or {}).get("supervisor_id"))
        s.expunge_all()
    return render_template("admin/team.html", team=t, members=members, channels=channels, queue=entries,
                           users=users, open_chats=open_chats, reasons=REASONS, supervisor=supervisor, strategies=STRATEGY_LABELS,
                           hours=hours_summary(t), open_now=hours.is_open(t.hours or {}, t.holidays or [],
                                                                          t.time_zone, now))


# -- team form ----------------------------------------------------------------------------------

def _team_page(team: Team | None, *, values: dict[str, Any] | None = None,
               errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    errors = errors or {}
    with db().scope() as s:
        operators = _operators(s)
        channels = list(s.scalars(select(Channel).order_by(Channel.id)))
        if team is not None and values is None:
            values = team_values(team, member_ids(s, team.id))
    values = values or {"strategy": "round_robin", "time_zone": "UTC"}
    schema = team_form([(str(u.id), _user_label(u)) for u in operators])
    all_fields = {f.name: f for f in fields_for(schema, values=values, errors=errors,
                                               submitted=bool(errors) and request.method == "POST")}
    days = [(day, WEEKDAY_LABELS[day], values.get(f"hours_{day}", ""), errors.get(f"hours_{day}", []))
            for day in WEEKDAYS]
    return render_template(
        "admin/team_form.html", team=team, f=all_fields, days=days, operators=operators, channels=channels,
        chosen_members={int(v) for v in values.get("member_ids", [])},
        chosen_channels={int(v) for v in values.get("channel_ids", [])},
        member_errors=errors.get("member_ids", []), channel_errors=errors.get("channel_ids", []),
        hours_errors=errors.get("hours", []), form_errors=errors.get("_schema", []),
    ), status


def _ids(name: str) -> list[int]:
    return [int(v) for v in request.form.getlist(name) if v.isdigit()]


def _save_team(team_id: int | None) -> Any:
    schema = team_form([])  # supervisor choices only matter for display; the store checks the id
    data, errors = read_form(schema, request.form, creating=True)
    loaded: dict[str, Any] = {}
    if not errors:
        try:
            loaded = schema().load(data)
        except ValidationError as exc:
            errors = flatten_errors(exc.messages)
    hours_value, hour_errors = read_hours(request.form)
    errors.update(hour_errors)
    channel_ids, members = _ids("channel_ids"), _ids("member_ids")
    saved_id = None
    with db().scope() as s:
        current = get_or_404(s, Team, team_id) if team_id is not None else None
        if errors:
            # One round shows everything wrong: the store's verdict on what the form could read.
            rest = {"channel_ids": channel_ids, "member_ids": members, "name": request.form.get("name", "").strip()}
            if not hour_errors:
                rest["hours"] = hours_value
            for key in ("time_zone", "holidays"):
                if key not in errors and key in data:
                    rest[key] = data[key] if key == "holidays" else data[key].strip()
            found = team_errors(check_team(s, rest, current=current))
            errors = {**{k: v for k, v in found.items() if k not in errors}, **errors}
        else:
            try:
                saved_id = save_team(s, team_data(loaded, hours_value, channel_ids, members), now=utcnow(),
                                     team=current).id
            except InvalidRouting as exc:
                errors = team_errors(exc.errors)  # refused before anything was written
    if errors:
        values = {**submitted_values(request.form), "channel_ids": channel_ids, "member_ids": members}
        return _team_page(current, values=values, errors=errors, status=422)
    known.forget()
    flash(_("Team saved."), "success")
    return redirect(url_for("admin.team", team_id=saved_id))


@bp.get("/routing/teams/new")
@roles(*ADMIN)
def team_new() -> Any:
    return _team_page(None)


@bp.post("/routing/teams/new")
@roles(*ADMIN)
def team_create() -> Any:
    return _save_team(None)


@bp.get("/routing/teams/<int:team_id>/edit")
@roles(*ADMIN)
def team_edit(team_id: int) -> Any:
    with db().scope() as s:
        t = get_or_404(s, Team, team_id)
        s.expunge(t)
    return _team_page(t)


@bp.post("/routing/teams/<int:team_id>/edit")
@roles(*ADMIN)
def team_update(team_id: int) -> Any:
    return _save_team(team_id)


@bp.post("/routing/teams/<int:team_id>/delete")
@roles(*ADMIN)
def team_delete(team_id: int) -> Any:
    """Its rules go with it; its waiting chats stay unassigned."""
    with db().scope() as s:
        t = get_or_404(s, Team, team_id)
        name = t.name
        s.delete(t)
    known.forget()
    flash(_("Team %(name)s deleted.", name=name), "success")
    return redirect(url_for("admin.routing"))


# -- rules --------------------------------------------------------------------------------------

def _targets(s: Any) -> list[tuple[str, str]]:
    teams = [(f"team:{t.id}", _("Team: %(name)s", name=t.name)) for t in s.scalars(select(Team).order_by(Team.name))]
    people = [(f"user:{u.id}", _("Operator: %(name)s", name=_user_label(u))) for u in _operators(s)]
    return teams + people


def _rule_page(rule: RoutingRule | None, *, values: dict[str, Any] | None = None,
               errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    errors = errors or {}
    with db().scope() as s:
        targets = _targets(s)
        channels = list(s.scalars(select(Channel).order_by(Channel.id)))
    if values is None:
        values = rule_values(rule) if rule is not None else {"enabled": True}
    all_fields = {f.name: f for f in fields_for(rule_form(targets), values=values, errors=errors,
                                               submitted=request.method == "POST")}
    kinds = dict(LEAD_KINDS)
    for kind in values.get("lead_kinds", []):
        kinds.setdefault(kind, kind)  # a kind set through the API stays choosable
    return render_template(
        "admin/rule_form.html", rule=rule, f=all_fields, channels=channels, lead_kinds=kinds,
        chosen_channels={int(v) for v in values.get("channel_ids", [])}, chosen_kinds=set(values.get("lead_kinds", [])),
        channel_errors=errors.get("channel_ids", []), kind_errors=errors.get("lead_kinds", []),
        form_errors=errors.get("_schema", []),
    ), status


def _save_rule(rule_id: int | None) -> Any:
    schema = rule_form([])
    data, errors = read_form(schema, request.form, creating=True)
    loaded: dict[str, Any] = {}
    if not errors:
        try:
            loaded = schema().load(data)
        except ValidationError as exc:
            errors = flatten_errors(exc.messages)
    channel_ids, kinds = _ids("channel_ids"), [k for k in request.form.getlist("lead_kinds") if k.strip()]
    with db().scope() as s:
        current = get_or_404(s, RoutingRule, rule_id) if rule_id is not None else None
        if not errors:
            body, errors = rule_data(loaded, channel_ids, kinds, current)
            if not errors:
                try:
                    save_rule(s, body, now=utcnow(), rule=current)
                except InvalidRouting as exc:
                    errors = rule_errors(exc.errors)  # refused before anything was written
        if current is not None:
            s.expunge(current)
    if errors:
        values = {**submitted_values(request.form), "channel_ids": channel_ids, "lead_kinds": kinds}
        return _rule_page(current, values=values, errors=errors, status=422)
    known.forget()
    flash(_("Routing rule saved."), "success")
    return redirect(url_for("admin.routing") + "#rules")


@bp.get("/routing/rules/new")
@roles(*ADMIN)
def rule_new() -> Any:
    return _rule_page(None)


@bp.post("/routing/rules/new")
@roles(*ADMIN)
def rule_create() -> Any:
    return _save_rule(None)


@bp.get("/routing/rules/<int:rule_id>/edit")
@roles(*ADMIN)
def rule_edit(rule_id: int) -> Any:
    with db().scope() as s:
        r = get_or_404(s, RoutingRule, rule_id)
        s.expunge(r)
    return _rule_page(r)


@bp.post("/routing/rules/<int:rule_id>/edit")
@roles(*ADMIN)
def rule_update(rule_id: int) -> Any:
    return _save_rule(rule_id)


@bp.post("/routing/rules/<int:rule_id>/delete")
@roles(*ADMIN)
def rule_delete(rule_id: int) -> Any:
    with db().scope() as s:
        s.delete(get_or_404(s, RoutingRule, rule_id))
    known.forget()
    flash(_("Routing rule deleted."), "success")
    return redirect(url_for("admin.routing") + "#rules")
