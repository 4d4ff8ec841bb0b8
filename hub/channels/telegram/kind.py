"""Telegram on the channel contract (hub.channels.base). No customer-service window:
a bot may write to anyone who started it, at any time, until they block it. No
delivered/read receipts: a sent message ends "accepted" (sent) and stays so."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from hub.channels.base import Background, Capabilities, ChannelKind, Inbound, Outgoing, WebhookAnswer, WindowState
from hub.channels.registry import register
from hub.channels.telegram.compose import KINDS, MAX_TEXT, MEDIA_METHODS
from hub.channels.telegram.parse import parse
from hub.shared.security import constant_time_equal

if TYPE_CHECKING:
    from hub.channels.media import Media
    from hub.channels.webhook_cache import WebhookCache
    from hub.models import Message
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@register
class Telegram(ChannelKind):
    kind = "telegram"
    title = "Telegram bot"
    # Buttons and rows: what the hub's interactive input carries (Telegram's inline
    # keyboards take up to 100 buttons); each is a row of the keyboard.
    capabilities = Capabilities(kinds=KINDS, media=frozenset(MEDIA_METHODS), buttons=3, list_rows=10,
                                templates=False, reactions=False, read_receipts=False, max_text=MAX_TEXT,
                                window=False, delivery_receipts=False)
    source = "telegram"
    emulator = "hub.channels.telegram.emulator"

    def authentic(self, channel: Any, request: Inbound) -> bool:
        """The secret_token given to setWebhook, sent back in a header with every update."""
        expected = getattr(channel, "secret_token", "")
        return bool(expected) and constant_time_equal(request.headers.get(SECRET_HEADER, ""), expected)

    def parse(self, body: bytes) -> Any:
        return parse(body)

    def window(self, conversation: Any, now: datetime) -> WindowState:
        return WindowState.none()

    def queue(self, session: Session, outgoing: Outgoing, *, now: datetime) -> "Message":
        from hub.channels.telegram.outbound import queue_message

        return queue_message(session, outgoing, now=now)

    def messages_per_second(self, channel: Any) -> float:
        return float(channel.mps)

    def fetch_media(self, runtime: "Runtime", channel: Any, media: dict[str, Any], message_id: int) -> "Media":
        from hub.channels.telegram.media import fetch_file

        return fetch_file(runtime, channel, media, message_id)

    def webhook_cache(self, vault: "Vault") -> "WebhookCache[Any]":
        from hub.channels.telegram.webhook import bot_cache

        return bot_cache(vault)

    def receive_webhook(self, runtime: "Runtime", key: str, request: Inbound, now: datetime,
                        cache: "WebhookCache[Any] | None" = None) -> WebhookAnswer:
        """One update; a button press is answered in the webhook's answer (webhook.py)."""
        from hub.channels.receiver import receive_webhook
        from hub.channels.telegram.webhook import RECEIVING

        return receive_webhook(runtime, self, RECEIVING, key, request, now, cache)

    def background(self, runtime: "Runtime", owner: str) -> Background:
        from hub.channels.telegram.sender import TelegramSender

        return Background([TelegramSender(runtime, owner).run_once])
