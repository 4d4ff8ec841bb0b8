"""/api/v1 routing: teams, routing rules, operators' presence, the queues, transfers."""
from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from hub.events import payloads
from hub.platform.db import utcnow
from hub.models import Channel, Conversation, OperatorState, QueueEntry, RoutingRule, Team, TeamMember, User
from hub.models.routing import PRESENCES, STRATEGIES
from hub.routing import engine, known
from hub.routing.store import InvalidRouting, member_ids, save_rule, save_team
from hub.web.api.auth import authenticate, require_role
from hub.web.api.fields import Id, Int, Text
from hub.web.api.parsing import Blueprint
from hub.web.api.schemas import ConversationOut
from hub.web.api.views import conversation_out
from hub.web.lookups import api_get_or_404, db

blp = Blueprint("routing", __name__, description="Contact-center routing: teams with their hours, routing "
                "rules, operators' presence and capacity, queues and transfers.")
blp.before_request(authenticate)

HOURS_HELP = ('{"mon": [["09:00", "18:00"]], ...}: intervals per weekday in the team\'s time zone; an end not '
              'after its start runs past midnight; a weekday not named is closed; {} is always open')


class TeamIn(Schema):
    name = Text(200, min_length=1, required=True)
    strategy = Text(16, validate=validate.OneOf(STRATEGIES), load_default="round_robin")
    time_zone = Text(64, min_length=1, load_default="UTC", metadata={"description": "IANA name, e.g. Europe/Moscow"})
    hours = fields.Dict(keys=Text(3), load_default=dict, metadata={"description": HOURS_HELP})
    holidays = fields.List(Text(10), load_default=list, validate=validate.Length(max=366),
                           metadata={"description": "YYYY-MM-DD dates closed all day"})
    channel_ids = fields.List(Id(Channel), load_default=list, validate=validate.Length(max=1000),
                              metadata={"description": "channels the team serves; [] = every channel"})
    member_ids = fields.List(Id(User), load_default=list, validate=validate.Length(max=5000))
    sticky_wait_seconds = Int(0, 86400, load_default=0,
                              metadata={"description": "sticky: how long the previous operator is waited for"})
    off_hours_reply = Text(4096, allow_none=True, load_default=None,
                           metadata={"description": "sent outside the hours when the window allows free text"})
    sla = fields.Dict(keys=Text(32), load_default=dict, metadata={"description": (
        "first_response_seconds, next_response_seconds, resolution_seconds (business seconds), "
        "warn_before_seconds, reassign_on_breach, supervisor_id; {} has no clocks")})


class TeamPatch(TeamIn):
    """TeamIn, every field optional (what is not given stays)."""


class TeamOut(Schema):
    id = fields.Integer()
    name = fields.String()
    strategy = fields.String()
    time_zone = fields.String()
    hours = fields.Dict()
    holidays = fields.List(fields.String())
    channel_ids = fields.List(fields.Integer())
    member_ids = fields.List(fields.Integer())
    sticky_wait_seconds = fields.Integer()
    off_hours_reply = fields.String(allow_none=True)
    sla = fields.Dict()
    open_now = fields.Boolean()
    queued = fields.Integer()


class RuleIn(Schema):
    name = Text(200, load_default="")
    position = Int(0, 1_000_000, load_default=0, metadata={"description": "rules are tried in this order"})
    enabled = fields.Boolean(load_default=True)
    conditions = fields.Dict(keys=Text(32), load_default=dict,
                             metadata={"description": "channel_ids, lead_kinds, utm_source, utm_medium, "
                                                      "utm_campaign, keywords, contact, hours, time_zone "
                                                      "(see docs/routing.md); {} matches every conversation"})
    team_id = Id(Team, allow_none=True, load_default=None)
    user_id = Id(User, allow_none=True, load_default=None)


class RulePatch(RuleIn):
    """RuleIn, every field optional (what is not given stays)."""


class RuleOut(Schema):
    id = fields.Integer()
    name = fields.String()
    position = fields.Integer()
    enabled = fields.Boolean()
    conditions = fields.Dict()
    team_id = fields.Integer(allow_none=True)
    user_id = fields.Integer(allow_none=True)


class PresenceIn(Schema):
    presence = Text(16, required=True, validate=validate.OneOf(PRESENCES))
    capacity = Int(0, 1000, metadata={"description": "open conversations at most"})


class OperatorOut(Schema):
    user_id = fields.Integer()
    email = fields.String()
    name = fields.String()
    presence = fields.String()
    capacity = fields.Integer()
    open_conversations = fields.Integer()
    seen_at = fields.String(allow_none=True)
    team_ids = fields.List(fields.Integer())


class QueuedOut(Schema):
    conversation_id = fields.Integer()
    position = fields.Integer()
    reason = fields.String(metadata={"description": "no_operator | off_hours | waiting_for_operator | offered"})
    queued_at = fields.String()
    user_id = fields.Integer(allow_none=True, metadata={"description": "the operator it waits for, if one"})
    wait_until = fields.String(allow_none=True)


class TransferIn(Schema):
    user_id = Id(User, allow_none=True, load_default=None)
    team_id = Id(Team, allow_none=True, load_default=None)


def _invalid(exc: InvalidRouting) -> None:
    abort(422, message=f"invalid routing settings: {exc}", errors={"json": exc.errors})


def _team_out(session, team: Team) -> dict[str, Any]:
    from hub.routing import hours

    queued = session.scalar(select(func.count()).select_from(QueueEntry).where(QueueEntry.team_id == team.id))
    return {"id": team.id, "name": team.name, "strategy": team.strategy, "time_zone": team.time_zone,
            "hours": team.hours or {}, "holidays": team.holidays or [], "channel_ids": team.channel_ids or [],
            "member_ids": member_ids(session, team.id), "sticky_wait_seconds": team.sticky_wait_seconds,
            "off_hours_reply": team.off_hours_reply, "sla": team.sla or {}, "queued": queued or 0,
            "open_now": hours.is_open(team.hours or {}, team.holidays or [], team.time_zone, utcnow())}


def _rule_out(rule: RoutingRule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "position": rule.position, "enabled": rule.enabled,
            "conditions": rule.conditions or {}, "team_id": rule.team_id, "user_id": rule.user_id}


@blp.route("/teams")
class Teams(MethodView):
    @blp.response(200, TeamOut(many=True))
    def get(self):
        with db().scope() as session:
            return [_team_out(session, t) for t in session.scalars(select(Team).order_by(Team.name))]

    @require_role("admin")
    @blp.arguments(TeamIn)
    @blp.response(201, TeamOut)
    def post(self, body: dict[str, Any]):
        with db().scope() as session:
            try:
                team = save_team(session, body, now=utcnow())
            except InvalidRouting as exc:
                _invalid(exc)
            out = _team_out(session, team)
        known.forget()  # once committed: other requests of this process read it from now on
        return out


@blp.route("/teams/<id:team_id>")
class TeamItem(MethodView):
    @blp.response(200, TeamOut)
    def get(self, team_id: int):
        with db().scope() as session:
            return _team_out(session, api_get_or_404(session, Team, team_id, "team"))

    @require_role("admin")
    @blp.arguments(TeamPatch(partial=True))
    @blp.response(200, TeamOut)
    def patch(self, body: dict[str, Any], team_id: int):
        with db().scope() as session:
            team = api_get_or_404(session, Team, team_id, "team")
            try:
                save_team(session, body, now=utcnow(), team=team)
            except InvalidRouting as exc:
                _invalid(exc)
            out = _team_out(session, team)
        known.forget()
        return out

    @require_role("admin")
    @blp.response(204)
    def delete(self, team_id: int):
        """The team's waiting chats stay unassigned (its rules go with it)."""
        with db().scope() as session:
            session.delete(api_get_or_404(session, Team, team_id, "team"))
        known.forget()


@blp.route("/teams/<id:team_id>/queue")
class TeamQueue(MethodView):
    @blp.response(200, QueuedOut(many=True))
    def get(self, team_id: int):
        """The team's waiting conversations, first in line first."""
        with db().scope() as session:
            api_get_or_404(session, Team, team_id, "team")
            entries = session.scalars(select(QueueEntry).where(QueueEntry.team_id == team_id)
                                      .order_by(QueueEntry.queued_at, QueueEntry.conversation_id))
            return [{"conversation_id": e.conversation_id, "position": i, "reason": e.reason,
                     "queued_at": payloads.iso(e.queued_at), "user_id": e.user_id,
                     "wait_until": payloads.iso(e.wait_until)} for i, e in enumerate(entries, 1)]


@blp.route("/routing-rules")
class Rules(MethodView):
    @blp.response(200, RuleOut(many=True))
    def get(self):
        """In the order they are tried."""
        with db().scope() as session:
            return [_rule_out(r) for r in session.scalars(select(RoutingRule)
                                                          .order_by(RoutingRule.position, RoutingRule.id))]

    @require_role("admin")
    @blp.arguments(RuleIn)
    @blp.response(201, RuleOut)
    def post(self, body: dict[str, Any]):
        with db().scope() as session:
            try:
                rule = save_rule(session, body, now=utcnow())
            except InvalidRouting as exc:
                _invalid(exc)
            out = _rule_out(rule)
        known.forget()
        return out


@blp.route("/routing-rules/<id:rule_id>")
class RuleItem(MethodView):
    @blp.response(200, RuleOut)
    def get(self, rule_id: int):
        with db().scope() as session:
            return _rule_out(api_get_or_404(session, RoutingRule, rule_id, "routing rule"))

    @require_role("admin")
    @blp.arguments(RulePatch(partial=True))
    @blp.response(200, RuleOut)
    def patch(self, body: dict[str, Any], rule_id: int):
        with db().scope() as session:
            rule = api_get_or_404(session, RoutingRule, rule_id, "routing rule")
            try:
                save_rule(session, body, now=utcnow(), rule=rule)
            except InvalidRouting as exc:
                _invalid(exc)
            out = _rule_out(rule)
        known.forget()
        return out

    @require_role("admin")
    @blp.response(204)
    def delete(self, rule_id: int):
        with db().scope() as session:
            session.delete(api_get_or_404(session, RoutingRule, rule_id, "routing rule"))
        known.forget()


def _operator_out(session, user: User) -> dict[str, Any]:
    state = session.get(OperatorState, user.id)
    return {"user_id": user.id, "email": user.email, "name": user.name,
            "presence": state.presence if state else "offline", "capacity": state.capacity if state else 5,
            "open_conversations": engine.open_count(session, user.id),
            "seen_at": payloads.iso(state.seen_at) if state else None,
            "team_ids": list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id)
                                             .order_by(TeamMember.team_id)))}


@blp.route("/operators")
class Operators(MethodView):
    @blp.response(200, OperatorOut(many=True))
    def get(self):
        """Everyone who can take conversations, with presence, capacity and load."""
        with db().scope() as session:
            users = session.scalars(select(User).where(User.active.is_(True), User.role != "viewer")
                                    .order_by(User.id))
            return [_operator_out(session, u) for u in users]


@blp.route("/operators/<id:user_id>/presence")
class Presence(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(PresenceIn)
    @blp.response(200, OperatorOut)
    def put(self, body: dict[str, Any], user_id: int):
        """Operators set their own presence; admins anyone's, and capacities."""
        me = g.api_user
        if user_id != me["id"] and me["role"] != "admin":
            abort(403, message="only an admin sets another operator's presence")
        if "capacity" in body and me["role"] != "admin":
            abort(403, message="only an admin sets capacities")
        with db().scope() as session:
            user = api_get_or_404(session, User, user_id, "user")
            if not user.active or user.role == "viewer":
                abort(422, message=f"user {user_id} cannot take conversations",
                      errors={"json": {"user_id": ["not an active operator or admin"]}})
            engine.set_presence(session, user_id, body["presence"], now=utcnow(), capacity=body.get("capacity"))
            return _operator_out(session, user)


@blp.route("/conversations/<id:conversation_id>/transfer")
class Transfer(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(TransferIn)
    @blp.response(200, ConversationOut)
    def post(self, body: dict[str, Any], conversation_id: int):
        """To an operator (assigned now when online with room, else waiting for them) or
        to a team (routed by its strategy). The history stays with the conversation."""
        if body["user_id"] is None and body["team_id"] is None:
            abort(422, message="give user_id or team_id", errors={"json": {"user_id": ["give user_id or team_id"]}})
        with db().scope() as session:
            conversation = api_get_or_404(session, Conversation, conversation_id, "conversation")
            if conversation.status != "open":
                abort(409, message="the conversation is closed")
            errors: dict[str, list[str]] = {}
            if body["team_id"] is not None and session.get(Team, body["team_id"]) is None:
                errors["team_id"] = [f"no team with id {body['team_id']}"]
            if body["user_id"] is not None:
                user = session.get(User, body["user_id"])
                if user is None or not user.active or user.role == "viewer":
                    errors["user_id"] = [f"no active operator or admin with id {body['user_id']}"]
            if errors:
                _invalid(InvalidRouting(errors))
            engine.transfer(session, conversation, now=utcnow(), to_user_id=body["user_id"],
                            to_team_id=body["team_id"], by_user_id=g.api_user["id"])
            return conversation_out(session, conversation)
