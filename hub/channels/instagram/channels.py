"""Instagram professional accounts as channels: added with the Meta app's secret (it
signs the webhooks), a token that may send for the account, the account's id and a
verify token of the user's choosing (Meta's subscription handshake); checked with
GET /{ig-user-id}?fields=username, which also gives the @username shown in the hub.

An account's row: kind "instagram", provider "instagram", phone_number_id
"ig:<account id>" (one channel per account), display_number "@<username>",
secrets_enc {"access_token", "app_secret", "verify_token"} (encrypted, never shown or
logged). The call to Meta happens outside any database transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

import requests
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from hub.channels.instagram.client import DEFAULT_API, InstagramClient, InstagramError
from hub.channels.settings import InvalidChannel, secrets_of
from hub.shared.http import TimeoutSession
from hub.models import Channel
from hub.shared.security import random_key

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

KIND = "instagram"
PROVIDER = "instagram"
# Meta's Send API takes about 100 calls a second per account; the hub keeps well under.
MESSAGES_PER_SECOND = 20
URL = validate.Regexp(r"^(https?://[^\s]+)?\Z", error="an http(s) URL, or empty for graph.facebook.com")


class InstagramSettings(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200),
                         metadata={"label": "Name", "help": "How operators will see this account."})
    ig_user_id = fields.String(required=True, validate=validate.Regexp(r"^\d{5,30}\Z", error="digits only"),
                               metadata={"label": "Instagram account ID",
                                         "help": "The professional account's ID (IG user id), digits."})
    access_token = fields.String(required=True, validate=validate.Length(20, 1000),
                                 metadata={"label": "Access token", "secret": True,
                                           "help": "A token with instagram_manage_messages for this account."})
    app_secret = fields.String(required=True, validate=validate.Length(16, 200),
                               metadata={"label": "App secret", "secret": True,
                                         "help": "The Meta app's secret: it signs every webhook."})
    verify_token = fields.String(required=True, validate=validate.Length(8, 200),
                                 metadata={"label": "Verify token", "secret": True,
                                           "help": "Any phrase; enter the same in the app's webhook settings."})
    api_base_url = fields.String(load_default="", validate=[validate.Length(max=255), URL],
                                 metadata={"label": "API base URL", "help": "Leave empty for graph.facebook.com."})


def client_for(channel: Channel, runtime: "Runtime", http: requests.Session | None = None) -> InstagramClient:
    token = secrets_of(channel, runtime.vault).get("access_token", "")
    return InstagramClient(token, http or TimeoutSession(runtime.config.delivery.http_timeout_seconds),
                           channel.api_base_url or DEFAULT_API, runtime.config.whatsapp.api_version)


def account_id(channel: Any) -> str:
    return channel.phone_number_id.removeprefix("ig:")


def webhook_url(channel: Channel, config: Any) -> str:
    return f"{config.base_url.rstrip('/')}/webhooks/instagram/{channel.key}"


def refused(exc: InstagramError) -> InvalidChannel:
    if exc.code is None and exc.http_status is None:
        return InvalidChannel({"access_token": [f"Instagram could not be reached to check the account ({exc})"]})
    if exc.code == 190 or exc.http_status == 401:
        return InvalidChannel({"access_token": [f"Meta refused this token: {exc.message}"]})
    return InvalidChannel({"ig_user_id": [f"Meta refused GET /{{ig-user-id}}: {exc}"]})


@dataclass(frozen=True)
class Account:
    id: str
    username: str


def check_account(token: str, ig_user_id: str, *, base_url: str, version: str, http: requests.Session) -> Account:
    """The account as Meta names it (raises InvalidChannel with Meta's words)."""
    try:
        data = InstagramClient(token, http, base_url or DEFAULT_API, version).account(ig_user_id)
    except InstagramError as exc:
        raise refused(exc) from None
    return Account(str(data.get("id") or ig_user_id), str(data.get("username") or ""))


def create_instagram_channel(runtime: "Runtime", data: Mapping[str, Any], *, now: datetime,
                             http: requests.Session | None = None) -> int:
    """Check the account with Meta, then store the channel; its id."""
    try:
        loaded = InstagramSettings().load(dict(data))
    except ValidationError as exc:
        raise InvalidChannel(exc.messages) from None
    http = http or TimeoutSession(runtime.config.delivery.http_timeout_seconds)
    account = check_account(loaded["access_token"], loaded["ig_user_id"], base_url=loaded["api_base_url"],
                            version=runtime.config.whatsapp.api_version, http=http)
    with runtime.db.scope() as session:
        if session.scalar(select(Channel.id).where(Channel.phone_number_id == f"ig:{loaded['ig_user_id']}")):
            raise InvalidChannel({"ig_user_id": [f"the account @{account.username} is already a channel"]})
        channel = Channel(key=random_key(), kind=KIND, provider=PROVIDER, name=loaded["name"],
                          phone_number_id=f"ig:{loaded['ig_user_id']}", display_number=f"@{account.username}"[:32],
                          api_base_url=loaded["api_base_url"], mps=MESSAGES_PER_SECOND, health="ok",
                          secrets_enc=runtime.vault.encrypt({name: loaded[name] for name in (
                              "access_token", "app_secret", "verify_token")}),
                          created_at=now, updated_at=now)
        session.add(channel)
        session.flush()
        return channel.id


class InstagramChannelUpdate(Schema):
    name = fields.String(validate=validate.Length(1, 200), metadata={"label": "Name"})
    access_token = fields.String(validate=validate.Length(20, 1000),
                                 metadata={"label": "Access token", "secret": True,
                                           "help": "A new token for the same account (checked with Meta)."})
    app_secret = fields.String(validate=validate.Length(16, 200), metadata={"label": "App secret", "secret": True})
    verify_token = fields.String(validate=validate.Length(8, 200), metadata={"label": "Verify token", "secret": True})


def _instagram(session: Any, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None or channel.kind != KIND:
        raise LookupError(f"no Instagram channel with id {channel_id}")
    return channel


def update_instagram_channel(runtime: "Runtime", channel_id: int, data: Mapping[str, Any], *, now: datetime,
                             http: requests.Session | None = None) -> None:
    """A new name or secrets; a new token must be for the same account (checked with Meta)."""
    try:
        loaded = InstagramChannelUpdate().load({k: v for k, v in data.items() if v not in ("", None)})
    except ValidationError as exc:
        raise InvalidChannel(exc.messages) from None
    with runtime.db.scope() as session:
        channel = _instagram(session, channel_id)
        session.expunge(channel)
    if loaded.get("access_token"):
        check_account(loaded["access_token"], account_id(channel), base_url=channel.api_base_url,
                      version=runtime.config.whatsapp.api_version,
                      http=http or TimeoutSession(runtime.config.delivery.http_timeout_seconds))
    with runtime.db.scope() as session:
        row = _instagram(session, channel_id)
        if "name" in loaded:
            row.name = loaded["name"]
        secrets = {k: loaded[k] for k in ("access_token", "app_secret", "verify_token") if k in loaded}
        if secrets:
            row.secrets_enc = runtime.vault.encrypt({**secrets_of(row, runtime.vault), **secrets})
            if "access_token" in secrets:
                row.health, row.health_message = "ok", ""
        row.updated_at = now


def check_connection(runtime: "Runtime", channel_id: int, *, now: datetime,
                    http: requests.Session | None = None) -> str | None:
    """GET /{ig-user-id}?fields=username with the stored token: Meta's refusal, or None;
    the channel's health says the same."""
    with runtime.db.scope() as session:
        channel = _instagram(session, channel_id)
        session.expunge(channel)
    error, username = None, None
    try:
        username = client_for(channel, runtime, http).account(account_id(channel)).get("username")
    except InstagramError as exc:
        error = f"Meta refused GET /{account_id(channel)}: {exc}"
    with runtime.db.scope() as session:
        row = _instagram(session, channel_id)
        row.health, row.health_message = ("unhealthy", error) if error else ("ok", "")
        if username:
            row.display_number = f"@{username}"[:32]
        row.updated_at = now
    return error


def remove_instagram_channel(runtime: "Runtime", channel_id: int) -> None:
    """The channel and its conversations go (the app's webhook subscription is Meta-side)."""
    with runtime.db.scope() as session:
        session.delete(_instagram(session, channel_id))
