"""/api/v1/messages: send WhatsApp messages (queued, sent by workers), read their state,
fetch their media."""
from __future__ import annotations

from typing import Any

from flask import Response, g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.channels.media import MediaUnavailable, fetch_media
from hub.channels.base import Outgoing, TemplateInput
from hub.channels.sending import queue
from hub.platform.db import utcnow
from hub.models import Channel, Conversation, Message
from hub.web.api.fields import Id, Text
from hub.web.api.schemas import MessageOut
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.api.views import message_out
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("messages", __name__, url_prefix="/messages",
                description="WhatsApp messages: send (text, media, templates, interactive, reactions, "
                            "read receipts) and follow their delivery and cost.")
blp.before_request(authenticate)

KINDS = ("text", "image", "audio", "video", "document", "sticker", "template", "interactive", "reaction", "read")


class TextIn(Schema):
    body = Text(4096, min_length=1, required=True)
    preview_url = fields.Boolean()


class MediaIn(Schema):
    link = fields.Url(schemes={"https", "http"}, validate=validate.Length(max=2048))
    id = Text(64, min_length=1)
    caption = Text(1024)
    filename = Text(240)

    @validates_schema
    def _one_source(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("link")) == bool(data.get("id")):
            raise ValidationError("give exactly one of link (a URL) or id (an uploaded media id)")


def _list_or_object(value: Any) -> None:
    if value is not None and not isinstance(value, (list, dict)):
        raise ValidationError("give a list (positional parameters) or an object (named parameters)")


def _header_value(value: Any) -> None:
    if isinstance(value, str):
        if len(value) > 60:
            raise ValidationError("a text header parameter holds at most 60 characters")
    elif value is not None and not isinstance(value, dict):
        raise ValidationError("give the header text, or an object such as {\"type\": \"image\", ...}")


class TemplateValues(Schema):
    """The variables of a template: what a send fills in and a preview renders."""

    body = fields.Raw(allow_none=True, validate=_list_or_object, metadata={
        "description": "positional: [\"Ana\", \"42\"]; named: {\"first_name\": \"Ana\"}"})
    header = fields.Raw(allow_none=True, validate=_header_value, metadata={
        "description": "text, or {\"type\": \"image\", \"image\": {\"link\": ...}}"})
    buttons = fields.List(fields.Dict(), validate=validate.Length(max=10), metadata={
        "description": "[{\"index\": 0, \"sub_type\": \"url\", \"text\": \"order/42\"}, "
                       "{\"index\": 1, \"sub_type\": \"quick_reply\", \"payload\": \"yes\"}]"})


class TemplateIn(TemplateValues):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,512}\Z",
                                                                 error="lowercase letters, digits and _"))
    language = Text(16, min_length=2, required=True)


class ReplyButton(Schema):
    id = Text(256, min_length=1, required=True)
    title = Text(20, min_length=1, required=True)


class ListRow(Schema):
    id = Text(200, min_length=1, required=True)
    title = Text(24, min_length=1, required=True)
    description = Text(72)


class ListSection(Schema):
    title = Text(24)
    rows = fields.List(fields.Nested(ListRow), required=True, validate=validate.Length(1, 10))


class InteractiveIn(Schema):
    """Reply buttons (up to 3) or a list (up to 10 rows), with Meta's length limits."""

    type = fields.String(required=True, validate=validate.OneOf(["button", "list"]))
    header = Text(60, metadata={"description": "header text"})
    body = Text(1024, min_length=1, required=True)
    footer = Text(60)
    buttons = fields.List(fields.Nested(ReplyButton), validate=validate.Length(1, 3))
    button = Text(20, min_length=1, metadata={"description": "list: the menu button"})
    sections = fields.List(fields.Nested(ListSection), validate=validate.Length(1, 10))

    @validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        if data["type"] == "button":
            if not data.get("buttons"):
                raise ValidationError("reply buttons need 1 to 3 buttons", "buttons")
            titles = [b["title"] for b in data["buttons"]]
            if len(set(titles)) != len(titles):
                raise ValidationError("button titles must be unique", "buttons")
        else:
            if not data.get("sections") or not data.get("button"):
                raise ValidationError("a list needs `button` and `sections`", "sections")
            if sum(len(s["rows"]) for s in data["sections"]) > 10:
                raise ValidationError("a list holds at most 10 rows in all", "sections")


WAMID_MAX = 255  # messages.wa_message_id


class ReactionIn(Schema):
    message_id = Text(WAMID_MAX, min_length=1, required=True,
                      metadata={"description": "wamid of the message reacted to"})
    emoji = Text(32, load_default="", metadata={"description": "one emoji (a sequence at most); empty removes it"})


class ReadIn(Schema):
    message_id = Text(WAMID_MAX, min_length=1, required=True)
    typing_indicator = fields.Boolean(load_default=False)


class MessageIn(Schema):
    conversation_id = Id(Conversation, metadata={"description": "reply in this conversation"})
    channel_id = Id(Channel, metadata={"description": "with `to`: write to a phone number"})
    to = Text(32, min_length=6, metadata={"description": "E.164, e.g. +15557654321"})
    type = fields.String(required=True, validate=validate.OneOf(KINDS))
    reply_to = Text(WAMID_MAX, metadata={"description": "wamid quoted (WhatsApp context)"})
    text = fields.Nested(TextIn)
    image = fields.Nested(MediaIn)
    audio = fields.Nested(MediaIn)
    video = fields.Nested(MediaIn)
    document = fields.Nested(MediaIn)
    sticker = fields.Nested(MediaIn)
    template = fields.Nested(TemplateIn)
    interactive = fields.Nested(InteractiveIn)
    reaction = fields.Nested(ReactionIn)
    read = fields.Nested(ReadIn)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("type")
        if kind and kind not in data:
            raise ValidationError(f"a {kind} message needs a `{kind}` object", kind)
        if data.get("conversation_id") is None and (data.get("channel_id") is None or not data.get("to")):
            raise ValidationError("give conversation_id, or channel_id and to", "conversation_id")
        if kind in ("audio", "sticker") and data[kind].get("caption"):
            raise ValidationError(f"{kind} messages have no caption", kind)


def _interactive_object(data: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": data["type"], "body": {"text": data["body"]}}
    if data.get("header"):
        obj["header"] = {"type": "text", "text": data["header"]}
    if data.get("footer"):
        obj["footer"] = {"text": data["footer"]}
    if data["type"] == "button":
        obj["action"] = {"buttons": [{"type": "reply", "reply": b} for b in data["buttons"]]}
    else:
        obj["action"] = {"button": data["button"], "sections": data["sections"]}
    return obj


@blp.route("")
class Messages(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(MessageIn)
    @blp.response(202, MessageOut)
    @blp.alt_response(409, description="window_closed (with usable templates) or opted_out")
    @blp.alt_response(422, description="invalid input or template parameters")
    def post(self, body: dict[str, Any]):
        """Queue a message; workers send it under the number's throughput limit."""
        kind = body["type"]
        template = None
        content: dict[str, Any] | None = None
        if kind == "template":
            t = body["template"]
            template = TemplateInput(t["name"], t["language"], t.get("body"), t.get("header"), t.get("buttons"))
        elif kind == "interactive":
            content = _interactive_object(body["interactive"])
        else:
            content = body[kind]
        runtime = current_runtime()
        with runtime.db.scope() as session:
            message = queue(session, Outgoing(
                kind=kind, content=content, template=template,
                conversation_id=body.get("conversation_id"), channel_id=body.get("channel_id"),
                to=body.get("to"), reply_to=body.get("reply_to"), author_id=g.api_user["id"]),
                now=utcnow(), config=runtime.config)
            return message_out(session, message)


@blp.route("/<bigid:message_id>")
class MessageItem(MethodView):
    @blp.response(200, MessageOut)
    def get(self, message_id: int):
        """A message with its delivery status, error and cost."""
        with db().scope() as session:
            message = api_get_or_404(session, Message, message_id, "message")
            return message_out(session, message)


@blp.route("/<bigid:message_id>/media")
class MessageMedia(MethodView):
    @blp.response(200)
    def get(self, message_id: int):
        """The message's media file, fetched fresh from WhatsApp (size-limited)."""
        try:
            media = fetch_media(current_runtime(), message_id)
        except MediaUnavailable as exc:
            abort(exc.status, message=exc.message)
        return Response(media.data, mimetype=media.content_type,
                        headers={"Content-Disposition": f'inline; filename="{media.filename}"',
                                 "Cache-Control": "private, max-age=300"})
