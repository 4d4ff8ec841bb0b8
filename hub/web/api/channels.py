"""/api/v1/channels: the WhatsApp numbers the hub serves."""
from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select

from hub.channels.settings import InvalidChannel, secrets_of
from hub.channels.whatsapp.channels import ChannelSettings, create_channel, update_channel, webhook_url
from hub.platform.db import utcnow
from hub.models import Channel
from hub.web.api.schemas import ChannelOut
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("channels", __name__, url_prefix="/channels", description="WhatsApp numbers.")
blp.before_request(authenticate)


def channel_out(channel: Channel) -> dict[str, Any]:
    runtime = current_runtime()
    out = {k: getattr(channel, k) for k in (
        "id", "name", "provider", "phone_number_id", "waba_id", "display_number", "mps", "api_base_url",
        "quality_rating", "messaging_limit", "throughput_level", "health", "health_message")}
    out["kind"] = channel.kind
    out["last_webhook_at"] = channel.last_webhook_at.isoformat() if channel.last_webhook_at else None
    out["templates_synced_at"] = channel.templates_synced_at.isoformat() if channel.templates_synced_at else None
    secrets = secrets_of(channel, runtime.vault)
    out["secrets_set"] = sorted(k for k in secrets if k not in ("verify_token", "webhook_token", "secret_token"))
    if g.api_user["role"] == "admin" and channel.kind == "telegram":
        from hub.channels.telegram.channels import webhook_url as telegram_webhook_url

        out["webhook_url"] = telegram_webhook_url(channel, runtime.config)  # registered by the hub itself
    elif g.api_user["role"] == "admin" and channel.kind == "instagram":
        from hub.channels.instagram.channels import webhook_url as instagram_webhook_url

        out["webhook_url"] = instagram_webhook_url(channel, runtime.config)  # pasted into the Meta app
        out["verify_token"] = secrets.get("verify_token")
    elif g.api_user["role"] == "admin":
        # What the admin pastes into Meta's dashboard (or 360dialog's webhook setup).
        out["webhook_url"] = webhook_url(channel, runtime.config)
        out["verify_token"] = secrets.get("verify_token")
        if channel.provider == "360dialog":
            out["webhook_header"] = {runtime.config.whatsapp.d360_webhook_header: secrets.get("webhook_token")}
    return out


def _invalid(exc: InvalidChannel) -> None:
    abort(422, message=f"invalid channel: {exc}", errors={"json": exc.errors})


@blp.route("")
class Channels(MethodView):
    @blp.response(200, ChannelOut(many=True))
    def get(self):
        with db().scope() as session:
            return [channel_out(c) for c in session.scalars(select(Channel).order_by(Channel.id))]

    @require_role("admin")
    @blp.arguments(ChannelSettings(partial=True))
    @blp.response(201, ChannelOut)
    def post(self, body: dict[str, Any]):
        """Add a number; secrets are stored encrypted and never returned."""
        runtime = current_runtime()
        try:
            with runtime.db.scope() as session:
                return channel_out(create_channel(session, runtime.vault, body, now=utcnow()))
        except InvalidChannel as exc:
            _invalid(exc)


@blp.route("/<id:channel_id>")
class ChannelItem(MethodView):
    @blp.response(200, ChannelOut)
    def get(self, channel_id: int):
        with db().scope() as session:
            channel = api_get_or_404(session, Channel, channel_id, "channel")
            return channel_out(channel)

    @require_role("admin")
    @blp.arguments(ChannelSettings(partial=True))
    @blp.response(200, ChannelOut)
    def patch(self, body: dict[str, Any], channel_id: int):
        runtime = current_runtime()
        try:
            with runtime.db.scope() as session:
                channel = api_get_or_404(session, Channel, channel_id, "channel")
                if channel.kind != "whatsapp":
                    abort(409, message=f"channel {channel_id} is a {channel.kind} channel: "
                                       f"PATCH /api/v1/channels/{channel.kind}/{channel_id}")
                update_channel(session, runtime.vault, channel, body, now=utcnow())
                return channel_out(channel)
        except InvalidChannel as exc:
            _invalid(exc)
