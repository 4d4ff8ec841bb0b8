"""Instagram accounts in the admin: add one (app secret, access token, account id,
verify token; the hub checks the account with Meta), see the webhook URL and verify
token to paste into the Meta app, Test connection (GET /{ig-user-id}?fields=username),
edit or remove it. The same services as /api/v1/channels/instagram
(hub.channels.instagram.channels)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from hub.channels.instagram.channels import (
    InstagramChannelUpdate, InstagramSettings, check_connection, create_instagram_channel, remove_instagram_channel,
    update_instagram_channel, webhook_url,
)
from hub.channels.settings import InvalidChannel, secrets_of
from hub.platform.db import utcnow
from hub.models import Channel
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, roles
from hub.web.admin.forms import fields_for, flatten_errors, read_form, submitted_values, with_other_errors
from hub.web.lookups import current_runtime, detached_or_404

SECRETS = {"access_token", "app_secret", "verify_token"}


def _account(channel_id: int) -> Channel:
    return detached_or_404(Channel, channel_id, where=lambda channel: channel.kind == "instagram")


def form(channel: Channel | None, *, values: dict[str, Any] | None = None,
         errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    schema = InstagramChannelUpdate if channel is not None else InstagramSettings
    if channel is not None and values is None:
        values = {"name": channel.name}
    return render_template(
        "admin/instagram_channel_form.html", channel=channel,
        fields=fields_for(schema, values=values, errors=errors, submitted=bool(errors),
                          stored_secrets=SECRETS if channel is not None else ()),
        form_errors=(errors or {}).get("_schema", []),
    ), status


def page(channel: Channel, *, open_conversations: int, admin: bool) -> Any:
    setup = None
    if admin:  # what the admin pastes into the Meta app's webhook settings
        setup = {"webhook_url": webhook_url(channel, current_runtime().config),
                 "verify_token": secrets_of(channel, current_runtime().vault).get("verify_token", "")}
    return render_template("admin/instagram_channel.html", channel=channel, setup=setup,
                           open_conversations=open_conversations)


@bp.get("/channels/instagram/new")
@roles(*ADMIN)
def instagram_channel_new() -> Any:
    return form(None)


@bp.post("/channels/instagram/new")
@roles(*ADMIN)
def instagram_channel_create() -> Any:
    data, errors = read_form(InstagramSettings, request.form, creating=True)
    if errors:  # name every field at fault at once, not only the blank ones
        errors = with_other_errors(errors, lambda: InstagramSettings().validate(
            {k: v for k, v in data.items() if k not in errors}))
    else:
        try:
            channel_id = create_instagram_channel(current_runtime(), data, now=utcnow())
        except InvalidChannel as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return form(None, values=submitted_values(request.form), errors=errors, status=422)
    flash(_("Instagram account added. Paste the webhook URL and verify token below into your Meta app."), "success")
    return redirect(url_for("admin.channel", channel_id=channel_id))


def update(channel: Channel) -> Any:
    """The edit form of an account, posted (from admin.channel_update)."""
    data, errors = read_form(InstagramChannelUpdate, request.form, creating=False)
    if not errors:
        try:
            update_instagram_channel(current_runtime(), channel.id, data, now=utcnow())
        except InvalidChannel as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return form(channel, values=submitted_values(request.form), errors=errors, status=422)
    flash(_("Channel saved."), "success")
    return redirect(url_for("admin.channel", channel_id=channel.id))


@bp.post("/channels/<int:channel_id>/instagram/check")
@roles(*ADMIN)
def instagram_channel_check(channel_id: int) -> Any:
    _account(channel_id)
    error = check_connection(current_runtime(), channel_id, now=utcnow())
    if error:
        flash(_("Test connection failed: %(error)s", error=error), "error")
    else:
        flash(_("Connection works: Meta knows the account and accepts the token."), "success")
    return redirect(url_for("admin.channel", channel_id=channel_id))


@bp.post("/channels/<int:channel_id>/instagram/remove")
@roles(*ADMIN)
def instagram_channel_remove(channel_id: int) -> Any:
    _account(channel_id)
    remove_instagram_channel(current_runtime(), channel_id)
    flash(_("Instagram account removed."), "success")
    return redirect(url_for("admin.channels"))
