"""WhatsApp numbers: add and edit them in a form, and see what to paste into Meta's
dashboard (webhook URL, verify token) and how the number is doing (last webhook,
quality, messaging limit, throughput, token health)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from hub.channels.settings import InvalidChannel, secrets_of
from hub.channels.whatsapp.channels import ChannelSettings, create_channel, update_channel, webhook_url
from hub.channels.whatsapp.errors import WhatsAppError
from hub.channels.whatsapp.templates.sync import sync_channel
from hub.platform.db import utcnow
from hub.models import Channel, Conversation, Template
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, roles, safe_next
from hub.web.admin.forms import fields_for, flatten_errors, read_form, submitted_values, with_other_errors
from hub.web.lookups import current_runtime, db, get_or_404

STORED = ("name", "provider", "phone_number_id", "waba_id", "display_number", "mps", "api_base_url")


def _check_rest(data: dict[str, Any], pre: dict[str, list[str]], channel: Channel | None) -> dict[str, list[str]]:
    """The schema's verdict on the fields that passed the first look (the same merge of
    stored values and secrets the service does)."""
    merged = dict(data)
    if channel is not None:
        merged = {**{k: getattr(channel, k) for k in STORED}, **secrets_of(channel, current_runtime().vault), **data}
    for name in pre:
        merged.pop(name, None)
    return with_other_errors(pre, lambda: ChannelSettings().validate(merged))


@bp.get("/channels")
def channels() -> Any:
    with db().scope() as s:
        rows = list(s.scalars(select(Channel).order_by(Channel.id)))
    return render_template("admin/channels.html", channels=rows)


def _form(channel: Channel | None, *, values: dict[str, Any] | None = None,
          errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    stored: set[str] = set()
    if channel is not None:
        stored = set(secrets_of(channel, current_runtime().vault))
        if values is None:
            values = {k: getattr(channel, k) for k in ChannelSettings._declared_fields if hasattr(channel, k)}
    return render_template(
        "admin/channel_form.html", channel=channel,
        fields=fields_for(ChannelSettings, values=values, errors=errors, stored_secrets=stored,
                          submitted=bool(errors)),
        form_errors=(errors or {}).get("_schema", []),
    ), status


@bp.get("/channels/new")
@roles(*ADMIN)
def channel_new() -> Any:
    return _form(None)


@bp.post("/channels/new")
@roles(*ADMIN)
def channel_create() -> Any:
    data, errors = read_form(ChannelSettings, request.form, creating=True)
    if errors:
        errors = _check_rest(data, errors, None)
    else:
        try:
            with db().scope() as s:
                channel_id = create_channel(s, current_runtime().vault, data, now=utcnow()).id
        except InvalidChannel as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return _form(None, values=submitted_values(request.form), errors=errors, status=422)
    flash(_("Number added. Paste the webhook URL and verify token below into Meta's dashboard."), "success")
    return redirect(url_for("admin.channel", channel_id=channel_id))


@bp.get("/channels/<int:channel_id>")
def channel(channel_id: int) -> Any:
    runtime = current_runtime()
    with runtime.db.scope() as s:
        ch = get_or_404(s, Channel, channel_id)
        if ch.kind in ("telegram", "instagram"):
            from hub.web.admin import instagram_channels, telegram_channels

            module = telegram_channels if ch.kind == "telegram" else instagram_channels
            return module.page(ch, admin=current_user.role == "admin", open_conversations=s.scalar(
                select(func.count()).select_from(Conversation).where(Conversation.channel_id == ch.id,
                                                                     Conversation.status == "open")))
        account = ch.waba_id or ch.phone_number_id
        templates = s.scalar(select(func.count()).select_from(Template).where(Template.waba_id == account))
        open_conversations = s.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.channel_id == ch.id, Conversation.status == "open"))
        setup = None
        if current_user.role == "admin":
            # What the admin pastes into Meta's dashboard (or 360dialog's webhook setup).
            secrets = secrets_of(ch, runtime.vault)
            setup = {"webhook_url": webhook_url(ch, runtime.config),
                     "verify_token": secrets.get("verify_token", "")}
            if ch.provider == "360dialog":
                setup["header"] = (runtime.config.whatsapp.d360_webhook_header, secrets.get("webhook_token", ""))
    return render_template("admin/channel.html", channel=ch, setup=setup, templates=templates,
                           open_conversations=open_conversations)


@bp.get("/channels/<int:channel_id>/edit")
@roles(*ADMIN)
def channel_edit(channel_id: int) -> Any:
    with db().scope() as s:
        ch = get_or_404(s, Channel, channel_id)
    if ch.kind == "telegram":
        from hub.web.admin import telegram_channels

        return telegram_channels.form(ch)
    if ch.kind == "instagram":
        from hub.web.admin import instagram_channels

        return instagram_channels.form(ch)
    return _form(ch)


@bp.post("/channels/<int:channel_id>/edit")
@roles(*ADMIN)
def channel_update(channel_id: int) -> Any:
    with db().scope() as s:
        ch = get_or_404(s, Channel, channel_id)
    if ch.kind == "telegram":
        from hub.web.admin import telegram_channels

        return telegram_channels.update(ch)
    if ch.kind == "instagram":
        from hub.web.admin import instagram_channels

        return instagram_channels.update(ch)
    data, errors = read_form(ChannelSettings, request.form, creating=False)
    if errors:
        errors = _check_rest(data, errors, ch)
    else:
        try:
            with db().scope() as s:
                update_channel(s, current_runtime().vault, get_or_404(s, Channel, channel_id), data, now=utcnow())
        except InvalidChannel as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return _form(ch, values=submitted_values(request.form), errors=errors, status=422)
    flash(_("Channel saved."), "success")
    return redirect(url_for("admin.channel", channel_id=channel_id))


@bp.post("/channels/<int:channel_id>/sync")
@roles(*ADMIN)
def channel_sync(channel_id: int) -> Any:
    """Fetch the templates now; also tells whether the access token still works."""
    with db().scope() as s:
        get_or_404(s, Channel, channel_id)
    try:
        result = sync_channel(current_runtime(), channel_id, now=utcnow())
    except WhatsAppError as exc:
        flash(_("WhatsApp refused the template sync: %(error)s", error=str(exc)), "error")
    else:
        flash(_("Templates synced: %(n)s (%(gone)s no longer on the account).",
                n=result["templates"], gone=result["marked_deleted"]), "success")
    return redirect(safe_next(request.form.get("back")) if request.form.get("back")
                    else url_for("admin.channel", channel_id=channel_id))
