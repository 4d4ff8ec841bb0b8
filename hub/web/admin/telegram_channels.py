"""Telegram bots in the admin: add one by its token (the hub checks it with getMe and
registers the webhook itself), see how it is doing, rename it or give a new token,
register the webhook again, remove it (deleteWebhook). The same services as
/api/v1/channels/telegram (hub.channels.telegram.channels)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from hub.channels.telegram.channels import (
    TelegramChannelUpdate, TelegramSettings, create_telegram_channel, register_webhook, remove_telegram_channel,
    update_telegram_channel, webhook_url,
)
from hub.channels.settings import InvalidChannel
from hub.platform.db import utcnow
from hub.models import Channel
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, roles
from hub.web.admin.forms import fields_for, flatten_errors, read_form, submitted_values
from hub.web.lookups import current_runtime, detached_or_404


def _bot(channel_id: int) -> Channel:
    return detached_or_404(Channel, channel_id, where=lambda channel: channel.kind == "telegram")


def form(channel: Channel | None, *, values: dict[str, Any] | None = None,
         errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    schema = TelegramChannelUpdate if channel is not None else TelegramSettings
    if channel is not None and values is None:
        values = {"name": channel.name}
    return render_template(
        "admin/telegram_channel_form.html", channel=channel,
        fields=fields_for(schema, values=values, errors=errors, submitted=bool(errors),
                          stored_secrets={"bot_token"} if channel is not None else ()),
        form_errors=(errors or {}).get("_schema", []),
    ), status


def page(channel: Channel, *, open_conversations: int, admin: bool) -> Any:
    setup = {"webhook_url": webhook_url(channel, current_runtime().config)} if admin else None
    return render_template("admin/telegram_channel.html", channel=channel, setup=setup,
                           open_conversations=open_conversations)


@bp.get("/channels/telegram/new")
@roles(*ADMIN)
def telegram_channel_new() -> Any:
    return form(None)


@bp.post("/channels/telegram/new")
@roles(*ADMIN)
def telegram_channel_create() -> Any:
    data, errors = read_form(TelegramSettings, request.form, creating=True)
    if not errors:
        try:
            registered = create_telegram_channel(current_runtime(), data, now=utcnow())
        except InvalidChannel as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return form(None, values=submitted_values(request.form), errors=errors, status=422)
    if registered.webhook_error:
        flash(_("Bot added, but Telegram refused its webhook: %(error)s", error=registered.webhook_error), "error")
    else:
        flash(_("Bot added and its webhook registered with Telegram."), "success")
    return redirect(url_for("admin.channel", channel_id=registered.channel_id))


def update(channel: Channel) -> Any:
    """The edit form of a bot, posted (from admin.channel_update)."""
    data, errors = read_form(TelegramChannelUpdate, request.form, creating=False)
    data = {k: v for k, v in data.items() if v not in ("", None)}
    if not errors:
        try:
            error = update_telegram_channel(current_runtime(), channel.id, data, now=utcnow())
        except InvalidChannel as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return form(channel, values=submitted_values(request.form), errors=errors, status=422)
    if error:
        flash(_("Telegram refused the webhook: %(error)s", error=error), "error")
    else:
        flash(_("Channel saved."), "success")
    return redirect(url_for("admin.channel", channel_id=channel.id))


@bp.post("/channels/<int:channel_id>/telegram/webhook")
@roles(*ADMIN)
def telegram_channel_webhook(channel_id: int) -> Any:
    _bot(channel_id)
    error = register_webhook(current_runtime(), channel_id, now=utcnow())
    if error:
        flash(_("Telegram refused the webhook: %(error)s", error=error), "error")
    else:
        flash(_("Webhook registered with Telegram."), "success")
    return redirect(url_for("admin.channel", channel_id=channel_id))


@bp.post("/channels/<int:channel_id>/telegram/remove")
@roles(*ADMIN)
def telegram_channel_remove(channel_id: int) -> Any:
    _bot(channel_id)
    error = remove_telegram_channel(current_runtime(), channel_id)
    if error:
        flash(_("Bot removed; Telegram refused deleting its webhook: %(error)s", error=error), "error")
    else:
        flash(_("Bot removed and its webhook deleted."), "success")
    return redirect(url_for("admin.channels"))
