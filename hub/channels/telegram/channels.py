"""Telegram bots as channels: added with a bot token (checked with getMe, which also
gives the bot's id and @username), the webhook registered with setWebhook and a random
secret_token, removed with deleteWebhook.

A bot's row: kind "telegram", provider "bot_api", phone_number_id "tg:<bot id>" (one
channel per bot), display_number "@<username>", secrets_enc {"bot_token",
"secret_token"} (encrypted, never shown or logged). The calls to Telegram happen
outside any database transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

import requests
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from hub.channels.telegram.client import DEFAULT_API, TelegramClient, TelegramError
from hub.channels.settings import InvalidChannel, secrets_of
from hub.shared.http import TimeoutSession
from hub.models import Channel
from hub.shared.security import random_key

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
KIND = "telegram"
PROVIDER = "bot_api"
# Bot API: about 30 messages per second per bot (and about one per second per chat).
MESSAGES_PER_SECOND = 30
TOKEN = r"^\d{3,20}:[A-Za-z0-9_-]{30,100}\Z"


class TelegramSettings(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200),
                         metadata={"label": "Name", "help": "How operators will see this bot."})
    bot_token = fields.String(required=True, validate=validate.Regexp(TOKEN, error="not a bot token from @BotFather"),
                              metadata={"label": "Bot token", "secret": True,
                                        "help": "From @BotFather (/newbot or /token): 123456:ABC-..."})
    api_base_url = fields.String(load_default="", validate=[validate.Length(max=255), validate.Regexp(
        r"^(https?://[^\s]+)?\Z", error="an http(s) URL, or empty for api.telegram.org")],
        metadata={"label": "API base URL", "help": "Leave empty for api.telegram.org; set for a local Bot API server."})


class TelegramChannelUpdate(Schema):
    name = fields.String(validate=validate.Length(1, 200))
    bot_token = fields.String(validate=validate.Regexp(TOKEN, error="not a bot token from @BotFather"),
                              metadata={"secret": True})


def client_for(channel: Channel, runtime: "Runtime", http: requests.Session | None = None) -> TelegramClient:
    token = secrets_of(channel, runtime.vault).get("bot_token", "")
    return TelegramClient(token, http or TimeoutSession(runtime.config.delivery.http_timeout_seconds),
                          channel.api_base_url or DEFAULT_API)


def webhook_url(channel: Channel, config: Any) -> str:
    return f"{config.base_url.rstrip('/')}/webhooks/telegram/{channel.key}"


def _refused(exc: TelegramError) -> InvalidChannel:
    if exc.code == 0:
        return InvalidChannel({"bot_token": [f"Telegram could not be reached to check the token ({exc.description})"]})
    if exc.code in (401, 404):
        return InvalidChannel({"bot_token": ["Telegram refused this token (401 Unauthorized): copy it again from "
                                             "@BotFather"]})
    return InvalidChannel({"bot_token": [f"Telegram refused getMe: {exc.code} {exc.description}"]})


@dataclass(frozen=True)
class Registered:
    channel_id: int
    webhook_error: str | None


def create_telegram_channel(runtime: "Runtime", data: Mapping[str, Any], *, now: datetime,
                            http: requests.Session | None = None) -> Registered:
    """getMe, store the channel, then setWebhook (a refused setWebhook leaves the channel
    stored and marked unhealthy with Telegram's words; register_webhook() retries)."""
    try:
        loaded = TelegramSettings().load(dict(data))
    except ValidationError as exc:
        raise InvalidChannel(exc.messages) from None
    base = loaded["api_base_url"] or DEFAULT_API
    http = http or TimeoutSession(runtime.config.delivery.http_timeout_seconds)
    try:
        me = TelegramClient(loaded["bot_token"], http, base).get_me()
    except TelegramError as exc:
        raise _refused(exc) from None
    with runtime.db.scope() as session:
        if session.scalar(select(Channel.id).where(Channel.phone_number_id == f"tg:{me.id}")):
            raise InvalidChannel({"bot_token": [f"the bot @{me.username} is already a channel"]})
        channel = Channel(key=random_key(), kind=KIND, provider=PROVIDER, name=loaded["name"],
                          phone_number_id=f"tg:{me.id}", display_number=f"@{me.username}"[:32],
                          api_base_url=loaded["api_base_url"], mps=MESSAGES_PER_SECOND, health="unknown",
                          secrets_enc=runtime.vault.encrypt({"bot_token": loaded["bot_token"],
                                                             "secret_token": random_key(32)}),
                          created_at=now, updated_at=now)
        session.add(channel)
        session.flush()
        channel_id = channel.id
    return Registered(channel_id, register_webhook(runtime, channel_id, now=now, http=http))


def register_webhook(runtime: "Runtime", channel_id: int, *, now: datetime,
                     http: requests.Session | None = None) -> str | None:
    """setWebhook with the hub's URL and the channel's secret; the error, or None."""
    with runtime.db.scope() as session:
        channel = session.get(Channel, channel_id)
        session.expunge(channel)
    secret = secrets_of(channel, runtime.vault).get("secret_token", "")
    error = None
    try:
        client_for(channel, runtime, http).set_webhook(webhook_url(channel, runtime.config), secret)
    except TelegramError as exc:
        error = f"setWebhook was refused: {exc.code} {exc.description}"
        log.warning("telegram channel %s: %s", channel_id, error)
    with runtime.db.scope() as session:
        row = session.get(Channel, channel_id)
        row.health = "unhealthy" if error else "ok"
        row.health_message = error or ""
        row.updated_at = now
    return error


def update_telegram_channel(runtime: "Runtime", channel_id: int, data: Mapping[str, Any], *, now: datetime,
                            http: requests.Session | None = None) -> str | None:
    """A new name, or a new token of the same bot (getMe must name the same bot); a new
    token registers the webhook again."""
    try:
        loaded = TelegramChannelUpdate().load(dict(data))
    except ValidationError as exc:
        raise InvalidChannel(exc.messages) from None
    with runtime.db.scope() as session:
        channel = _telegram(session, channel_id)
        base = channel.api_base_url or DEFAULT_API
    token = loaded.get("bot_token")
    if token:
        try:
            me = TelegramClient(token, http or TimeoutSession(runtime.config.delivery.http_timeout_seconds),
                                base).get_me()
        except TelegramError as exc:
            raise _refused(exc) from None
        if f"tg:{me.id}" != channel.phone_number_id:
            raise InvalidChannel({"bot_token": [f"this token is of another bot (@{me.username})"]})
    with runtime.db.scope() as session:
        channel = _telegram(session, channel_id)
        if "name" in loaded:
            channel.name = loaded["name"]
        if token:
            channel.secrets_enc = runtime.vault.encrypt({**secrets_of(channel, runtime.vault), "bot_token": token})
        channel.updated_at = now
    return register_webhook(runtime, channel_id, now=now, http=http) if token else None


def remove_telegram_channel(runtime: "Runtime", channel_id: int, *, http: requests.Session | None = None) -> str | None:
    """deleteWebhook, then the channel (and its conversations) go. A refused
    deleteWebhook (a revoked token) does not keep the channel: its error is returned."""
    with runtime.db.scope() as session:
        channel = _telegram(session, channel_id)
        session.expunge(channel)
    error = None
    try:
        client_for(channel, runtime, http).delete_webhook()
    except TelegramError as exc:
        error = f"deleteWebhook was refused: {exc.code} {exc.description}"
        log.warning("telegram channel %s: %s", channel_id, error)
    with runtime.db.scope() as session:
        row = session.get(Channel, channel_id)
        if row is not None:
            session.delete(row)
    return error


def _telegram(session: Any, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None or channel.kind != KIND:
        raise LookupError(f"no Telegram channel with id {channel_id}")
    return channel
