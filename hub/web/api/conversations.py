"""/api/v1/conversations: the inbox seen through the API."""
from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from hub.conversation_actions import assign, close
from hub.db import utcnow
from hub.models import Conversation, Message
from hub.web.api.schemas import ConversationOut
from hub.web.api.auth import authenticate, require_role
from hub.web.api.views import conversation_out, message_out

blp = Blueprint("conversations", __name__, url_prefix="/conversations",
                description="Conversations with customers: list, read, assign, close.")
blp.before_request(authenticate)


class ConversationQuery(Schema):
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    channel_id = fields.Integer()
    assignee = fields.String(metadata={"description": "'me', 'none' or a user id"})
    before_id = fields.Integer()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AssignIn(Schema):
    assignee_id = fields.Integer(allow_none=True, required=True)


class CloseIn(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


def _get(session, conversation_id: int) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        abort(404, message=f"no conversation with id {conversation_id}")
    return conversation


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
            if not assignee.isdigit():
                abort(422, message="assignee must be 'me', 'none' or a user id")
            query = query.where(Conversation.assignee_id == int(assignee))
        with current_app.extensions["hub"].db.scope() as session:
            return [conversation_out(session, c) for c in session.scalars(query)]


@blp.route("/<int:conversation_id>")
class ConversationItem(MethodView):
    @blp.response(200, ConversationOut)
    def get(self, conversation_id: int):
        """The conversation with its messages, oldest first."""
        with current_app.extensions["hub"].db.scope() as session:
            conversation = _get(session, conversation_id)
            out = conversation_out(session, conversation)
            messages = session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                             Message.type != "read")
                                       .order_by(Message.sent_at, Message.id))
            out["messages"] = [message_out(session, m) for m in messages]
            return out


@blp.route("/<int:conversation_id>/assign")
class Assign(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(AssignIn)
    @blp.response(200, ConversationOut)
    def post(self, body: dict[str, Any], conversation_id: int):
        with current_app.extensions["hub"].db.scope() as session:
            conversation = _get(session, conversation_id)
            try:
                assign(session, conversation, body["assignee_id"], now=utcnow())
            except LookupError as exc:
                abort(422, message=str(exc))
            return conversation_out(session, conversation)


@blp.route("/<int:conversation_id>/close")
class Close(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(CloseIn)
    @blp.response(200, ConversationOut)
    def post(self, body: dict[str, Any], conversation_id: int):
        with current_app.extensions["hub"].db.scope() as session:
            conversation = _get(session, conversation_id)
            close(session, conversation, reason=body["reason"], now=utcnow())
            return conversation_out(session, conversation)
