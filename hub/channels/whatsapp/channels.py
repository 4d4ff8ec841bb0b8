"""WhatsApp numbers (channels): settings, secrets, and where their API calls go."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.channels.settings import InvalidChannel, secrets_of
from hub.platform.config import Config
from hub.models import Channel
from hub.shared.security import Vault, random_key

SECRET_FIELDS = ("access_token", "d360_api_key", "app_secret", "verify_token", "webhook_token")
SECRET_MAX = 4096  # Meta's tokens run to a few hundred characters


def _secret(**metadata: Any) -> fields.String:
    return fields.String(load_default="", allow_none=True, validate=validate.Length(max=SECRET_MAX),
                         metadata={"secret": True, **metadata})


class ChannelSettings(Schema):
    """The channel form (API and admin). On update, a secret left blank keeps its stored
    value and a null one removes it; a partial load (API PATCH) checks no credentials,
    update_channel checks the merged whole."""

    name = fields.String(required=True, validate=validate.Length(1, 200),
                         metadata={"label": "Name", "help": "How operators will see this number."})
    provider = fields.String(load_default="cloud", validate=validate.OneOf(["cloud", "360dialog"]),
                             metadata={"label": "Provider", "choices": ["cloud", "360dialog"],
                                       "help": "Meta's Cloud API directly, or 360dialog's relay."})
    phone_number_id = fields.String(required=True, validate=validate.Regexp(r"^\d{5,32}$", error="digits only"),
                                    metadata={"label": "Phone number ID", "help": "From WhatsApp > API Setup."})
    waba_id = fields.String(load_default="", validate=validate.Regexp(r"^(\d{5,32})?$", error="digits only"),
                            metadata={"label": "WhatsApp Business Account ID"})
    display_number = fields.String(load_default="", validate=validate.Length(max=32),
                                   metadata={"label": "Display number", "placeholder": "+1 555 000 1111"})
    mps = fields.Integer(load_default=80, validate=validate.Range(1, 1000),
                         metadata={"label": "Messages per second", "help": "The number's throughput (80 by default)."})
    api_base_url = fields.String(load_default="", validate=validate.Length(max=255),
                                 metadata={"label": "API base URL",
                                           "help": "Leave empty for Meta / 360dialog; set for a relay."})
    access_token = _secret(label="Access token", help="System-user token (Cloud API).")
    d360_api_key = _secret(label="360dialog API key")
    app_secret = _secret(label="App secret", help="Verifies Meta's webhook signatures.")
    verify_token = _secret(label="Verify token", help="Paste into Meta's webhook settings; generated when left empty.")
    webhook_token = _secret(label="Webhook header token (360dialog)",
                            help="360dialog sends it in a header with every webhook; generated when left empty.")

    @validates_schema
    def _credentials(self, data: dict[str, Any], *, partial: Any = None, **_: Any) -> None:
        if partial:  # only some fields: the stored ones fill the rest before the real check
            return
        if data.get("provider", "cloud") == "cloud":
            missing = [k for k in ("access_token", "app_secret", "waba_id") if not data.get(k)]
        else:
            missing = [k for k in ("d360_api_key",) if not data.get(k)]
        if missing:
            raise ValidationError({k: ["required for this provider"] for k in missing})


def _load(data: Mapping[str, Any], stored: Mapping[str, str]) -> dict[str, Any]:
    merged = dict(data)
    for name in SECRET_FIELDS:
        if not merged.get(name) and stored.get(name):
            merged[name] = stored[name]
    try:
        loaded = ChannelSettings().load(merged)
    except ValidationError as exc:
        raise InvalidChannel(exc.messages) from None
    loaded["verify_token"] = loaded["verify_token"] or random_key(18)
    if loaded["provider"] == "360dialog":
        loaded["webhook_token"] = loaded["webhook_token"] or random_key(24)
    return loaded


def _apply(channel: Channel, loaded: dict[str, Any], vault: Vault) -> None:
    for name in ("name", "provider", "phone_number_id", "waba_id", "display_number", "mps", "api_base_url"):
        setattr(channel, name, loaded[name])
    channel.secrets_enc = vault.encrypt({k: loaded[k] for k in SECRET_FIELDS if loaded.get(k)})


def create_channel(session: Session, vault: Vault, data: Mapping[str, Any], *, now: datetime) -> Channel:
    loaded = _load(data, {})
    if session.scalar(select(Channel.id).where(Channel.phone_number_id == loaded["phone_number_id"])):
        raise InvalidChannel({"phone_number_id": ["this number is already a channel"]})
    channel = Channel(key=random_key(), created_at=now, updated_at=now)
    _apply(channel, loaded, vault)
    session.add(channel)
    try:
        session.flush()
    except IntegrityError:
        raise InvalidChannel({"phone_number_id": ["this number is already a channel"]}) from None
    return channel


def update_channel(session: Session, vault: Vault, channel: Channel, data: Mapping[str, Any],
                   *, now: datetime) -> Channel:
    current = {name: getattr(channel, name) for name in
               ("name", "provider", "phone_number_id", "waba_id", "display_number", "mps", "api_base_url")}
    stored = {name: value for name, value in secrets_of(channel, vault).items()
              if not (name in data and data[name] is None)}
    loaded = _load({**current, **data}, stored)
    _apply(channel, loaded, vault)
    channel.updated_at = now
    return channel


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call the API for one channel."""

    provider: str
    base_url: str  # Graph: https://graph.facebook.com/v25.0 ; 360dialog: https://waba-v2.360dialog.io
    phone_number_id: str
    waba_id: str
    headers: dict[str, str]
    token: str  # sent to the media host too (never to another host)

    @property
    def messages_url(self) -> str:
        if self.provider == "360dialog":
            return f"{self.base_url}/messages"
        return f"{self.base_url}/{self.phone_number_id}/messages"


def endpoint(channel: Channel, vault: Vault, config: Config) -> Endpoint:
    secrets = secrets_of(channel, vault)
    wa = config.whatsapp
    if channel.provider == "360dialog":
        base = (channel.api_base_url or wa.d360_url).rstrip("/")
        token = secrets.get("d360_api_key", "")
        headers = {"D360-API-KEY": token}
    else:
        base = (channel.api_base_url or wa.graph_url).rstrip("/") + "/" + wa.api_version
        token = secrets.get("access_token", "")
        headers = {"Authorization": f"Bearer {token}"}
    return Endpoint(channel.provider, base, channel.phone_number_id, channel.waba_id, headers, token)


def webhook_url(channel: Channel, config: Config) -> str:
    return f"{config.base_url.rstrip('/')}/webhooks/whatsapp/{channel.key}"
