"""A number or bot the hub receives and sends on: a WhatsApp business number, or a
Telegram bot (kind "telegram", provider "bot_api"; hub.channels.telegram), or an
Instagram account (kind "instagram", provider "instagram"; hub.channels.instagram)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.db import Base, UTCDateTime
from hub.models._types import created_at, updated_at

PROVIDERS = ("cloud", "360dialog", "bot_api", "instagram")


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        CheckConstraint("provider IN ('cloud', '360dialog', 'bot_api', 'instagram')", name="provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unguessable part of the webhook URL /webhooks/whatsapp/<key>.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The channel kind (hub.channels.registry): "whatsapp", "telegram" or "instagram".
    kind: Mapped[str] = mapped_column(String(16), default="whatsapp", server_default="whatsapp")
    provider: Mapped[str] = mapped_column(String(16), default="cloud")
    phone_number_id: Mapped[str] = mapped_column(String(64), unique=True)
    waba_id: Mapped[str] = mapped_column(String(64), default="")
    display_number: Mapped[str] = mapped_column(String(32), default="")
    # Fernet token of a JSON object: access_token / d360_api_key, app_secret, verify_token.
    secrets_enc: Mapped[str] = mapped_column(Text, default="")
    # Where this number's API calls go; empty = the provider's default from the config
    # (Graph API or 360dialog). Lets a relay or the emulator stand in.
    api_base_url: Mapped[str] = mapped_column(String(255), default="")
    # Messages per second this number may send (Meta: 80 by default, up to 1000).
    mps: Mapped[int] = mapped_column(default=80)
    quality_rating: Mapped[str | None] = mapped_column(String(16))  # GREEN / YELLOW / RED
    messaging_limit: Mapped[str | None] = mapped_column(String(32))  # TIER_250 ... TIER_UNLIMITED
    throughput_level: Mapped[str | None] = mapped_column(String(32))
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_message: Mapped[str] = mapped_column(Text, default="")
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    templates_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by the scheduler, cleared by the worker that syncs: jobs only ask, workers do.
    templates_sync_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
