"""/api/v1/channels/instagram: Instagram accounts as channels (hub.channels.instagram.channels).

POST adds an account (checked with GET /{ig-user-id}?fields=username); PATCH renames it
or changes its secrets; POST .../check is Test connection; DELETE removes it. Secrets
are stored encrypted and never returned; the answer names the webhook URL and verify
token to paste into the Meta app's webhook settings. Listing and reading stay under
/api/v1/channels.
"""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields

from hub.channels.instagram.channels import (
    InstagramChannelUpdate, InstagramSettings, check_connection, create_instagram_channel, remove_instagram_channel,
    update_instagram_channel,
)
from hub.channels.settings import InvalidChannel
from hub.platform.db import utcnow
from hub.models import Channel
from hub.web.api.auth import authenticate, require_role
from hub.web.api.channels import channel_out
from hub.web.api.parsing import Blueprint
from hub.web.api.schemas import ChannelOut
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("instagram_channels", __name__, url_prefix="/channels/instagram",
                description="Instagram professional accounts.")
blp.before_request(authenticate)


class InstagramChannelOut(ChannelOut):
    check_error = fields.String(allow_none=True, metadata={"description": "Meta's refusal of Test connection"})


class InstagramRemoved(Schema):
    id = fields.Integer()


def _out(channel_id: int, check_error: str | None = None) -> dict[str, Any]:
    with db().scope() as session:
        return {**channel_out(session.get(Channel, channel_id)), "check_error": check_error}


def _known(channel_id: int) -> None:
    with db().scope() as session:
        api_get_or_404(session, Channel, channel_id, "Instagram channel",
                       where=lambda channel: channel.kind == "instagram")


@blp.route("")
class InstagramChannels(MethodView):
    @require_role("admin")
    @blp.arguments(InstagramSettings)
    @blp.response(201, InstagramChannelOut)
    def post(self, body: dict[str, Any]):
        """Add an account: the app secret, a token, the account's id and a verify token."""
        try:
            channel_id = create_instagram_channel(current_runtime(), body, now=utcnow())
        except InvalidChannel as exc:
            abort(422, message=f"invalid channel: {exc}", errors={"json": exc.errors})
        return _out(channel_id)


@blp.route("/<id:channel_id>")
class InstagramChannelItem(MethodView):
    @require_role("admin")
    @blp.arguments(InstagramChannelUpdate)
    @blp.response(200, InstagramChannelOut)
    def patch(self, body: dict[str, Any], channel_id: int):
        """Rename the account's channel, or change its token or secrets."""
        _known(channel_id)
        try:
            update_instagram_channel(current_runtime(), channel_id, body, now=utcnow())
        except InvalidChannel as exc:
            abort(422, message=f"invalid channel: {exc}", errors={"json": exc.errors})
        return _out(channel_id)

    @require_role("admin")
    @blp.response(200, InstagramRemoved)
    def delete(self, channel_id: int):
        """Remove the channel with its conversations."""
        _known(channel_id)
        remove_instagram_channel(current_runtime(), channel_id)
        return {"id": channel_id}


@blp.route("/<id:channel_id>/check")
class InstagramCheck(MethodView):
    @require_role("admin")
    @blp.response(200, InstagramChannelOut)
    def post(self, channel_id: int):
        """Test connection: GET /{ig-user-id}?fields=username with the stored token."""
        _known(channel_id)
        return _out(channel_id, check_connection(current_runtime(), channel_id, now=utcnow()))
