"""/api/v1/channels/telegram: Telegram bots as channels (hub.channels.telegram.channels).

POST adds a bot by its token (getMe, then setWebhook with a random secret token and
the hub's base_url); PATCH renames it or rotates its token; POST .../webhook registers
the webhook again; DELETE calls deleteWebhook and removes the channel. The token is
stored encrypted and never returned. Listing and reading stay under /api/v1/channels.
"""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields

from hub.channels.telegram.channels import (
    TelegramChannelUpdate, TelegramSettings, create_telegram_channel, register_webhook, remove_telegram_channel,
    update_telegram_channel,
)
from hub.channels.settings import InvalidChannel
from hub.platform.db import utcnow
from hub.models import Channel
from hub.web.api.auth import authenticate, require_role
from hub.web.api.channels import channel_out
from hub.web.api.parsing import Blueprint
from hub.web.api.schemas import ChannelOut
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("telegram_channels", __name__, url_prefix="/channels/telegram", description="Telegram bots.")
blp.before_request(authenticate)


class TelegramChannelOut(ChannelOut):
    webhook_error = fields.String(allow_none=True, metadata={"description": "setWebhook's refusal, if any"})


class Removed(Schema):
    id = fields.Integer()
    webhook_error = fields.String(allow_none=True, metadata={"description": "deleteWebhook's refusal, if any"})


def _invalid(exc: InvalidChannel) -> None:
    abort(422, message=f"invalid channel: {exc}", errors={"json": exc.errors})


def _out(channel_id: int, webhook_error: str | None) -> dict[str, Any]:
    with db().scope() as session:
        return {**channel_out(session.get(Channel, channel_id)), "webhook_error": webhook_error}


def _known(channel_id: int) -> None:
    with db().scope() as session:
        api_get_or_404(session, Channel, channel_id, "Telegram channel",
                       where=lambda channel: channel.kind == "telegram")


@blp.route("")
class TelegramChannels(MethodView):
    @require_role("admin")
    @blp.arguments(TelegramSettings)
    @blp.response(201, TelegramChannelOut)
    def post(self, body: dict[str, Any]):
        """Add a bot: its token from @BotFather (checked with getMe); the webhook is set."""
        try:
            registered = create_telegram_channel(current_runtime(), body, now=utcnow())
        except InvalidChannel as exc:
            _invalid(exc)
        return _out(registered.channel_id, registered.webhook_error)


@blp.route("/<id:channel_id>")
class TelegramChannelItem(MethodView):
    @require_role("admin")
    @blp.arguments(TelegramChannelUpdate)
    @blp.response(200, TelegramChannelOut)
    def patch(self, body: dict[str, Any], channel_id: int):
        """Rename the bot's channel, or give a new token of the same bot."""
        _known(channel_id)
        try:
            error = update_telegram_channel(current_runtime(), channel_id, body, now=utcnow())
        except InvalidChannel as exc:
            _invalid(exc)
        return _out(channel_id, error)

    @require_role("admin")
    @blp.response(200, Removed)
    def delete(self, channel_id: int):
        """deleteWebhook, then remove the channel with its conversations."""
        _known(channel_id)
        return {"id": channel_id, "webhook_error": remove_telegram_channel(current_runtime(), channel_id)}


@blp.route("/<id:channel_id>/webhook")
class TelegramWebhook(MethodView):
    @require_role("admin")
    @blp.response(200, TelegramChannelOut)
    def post(self, channel_id: int):
        """setWebhook again (after base_url changed, or a refusal)."""
        _known(channel_id)
        return _out(channel_id, register_webhook(current_runtime(), channel_id, now=utcnow()))
