"""/api/v1/conversations: the inbox seen through the API."""
from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, validate, validates
from sqlalchemy import select

from hub.conversations.actions import assign, close
from hub.platform.db import utcnow
from hub.models import Channel, Conversation, Message, User
from hub.routing import hooks as routing_hooks
from hub.web.api.fields import Id, Int, Text, id_max
from hub.web.api.schemas import ConversationOut
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.api.views import conversation_out, message_out
from hub.web.lookups import api_get_or_404, db

blp = Blueprint("conversations", __name__, url_prefix="/conversations",
                description="Conversations with customers: list, read, assign, close.")
blp.before_request(authenticate)


class ConversationQuery(Schema):
    status = Text(16, validate=validate.OneOf(["open", "closed"]))
    channel_id = Id(Channel)
    assignee = Text(32, metadata={"description": "'me', 'none' or a user id"})
    before_id = Id(Conversation)
    limit = Int(1, 200, load_default=50)

    @validates("assignee")
    def _assignee(self, value: str, **_: object) -> None:
        if value in ("me", "none"):
            return
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= id_max(User):
            raise ValidationError("must be 'me', 'none' or a user id")


class AssignIn(Schema):
    assignee_id = Id(User, allow_none=True, required=True)


class CloseIn(Schema):
    reason = Text(500, load_default="")


def _get(session, conversation_id: int) -> Conversation:
    return api_get_or_404(session, Conversation, conversation_id, "conversation")


@blp.route("")
class Conversations(MethodView):
    @blp.arguments(ConversationQuery, location="query")
    @blp.response(200, ConversationOut(many=True))
    def get(self, args: dict[str, Any]):
        """Most recently active first."""
        query = select(Conversation).order_by(Conversation.id.desc()).limit(args["limit"])
        if args.get("status"):
            query = query.where(Conversation.status == args["status"])
        if args.get("channel_id"):
            query = query.where(Conversation.channel_id == args["channel_id"])
        if args.get("before_id"):
            query = query.where(Conversation.id < args["before_id"])
        assignee = args.get("assignee")
        if assignee == "me":
            query = query.where(Conversation.assignee_id == g.api_user["id"])
        elif assignee == "none":
            query = query.where(Conversation.assignee_id.is_(None))
        elif assignee:
            query = query.where(Conversation.assignee_id == int(assignee))
        with db().scope() as session:
            return [conversation_out(session, c) for c in session.scalars(query)]


@blp.route("/<id:conversation_id>")
class ConversationItem(MethodView):
    @blp.response(200, ConversationOut)
    def get(self, conversation_id: int):
        """The conversation with its messages, oldest first."""
        with db().scope() as session:
            conversation = _get(session, conversation_id)
            out = conversation_out(session, conversation)
            messages = session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                             Message.type != "read")
                                       .order_by(Message.sent_at, Message.id))
            out["messages"] = [message_out(session, m) for m in messages]
            return out


@blp.route("/<id:conversation_id>/assign")
class Assign(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(AssignIn)
    @blp.response(200, ConversationOut)
    def post(self, body: dict[str, Any], conversation_id: int):
        with db().scope() as session:
            conversation = _get(session, conversation_id)
            was = conversation.assignee_id
            try:
                assign(session, conversation, body["assignee_id"], now=utcnow())
            except LookupError as exc:
                abort(422, message=str(exc))
            if was is not None and body["assignee_id"] is None:
                routing_hooks.conversation_released(session, conversation, now=utcnow())
            return conversation_out(session, conversation)


@blp.route("/<id:conversation_id>/close")
class Close(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(CloseIn)
    @blp.response(200, ConversationOut)
    def post(self, body: dict[str, Any], conversation_id: int):
        with db().scope() as session:
            conversation = _get(session, conversation_id)
            close(session, conversation, reason=body["reason"], now=utcnow())
            return conversation_out(session, conversation)
