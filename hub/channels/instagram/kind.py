"""Instagram on the channel contract (hub.channels.base): the standard 24-hour window
for everything, and 7 days for a person's replies with the HUMAN_AGENT tag
(window.py); quick replies instead of buttons; no templates."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Mapping

from sqlalchemy.orm import Session

from hub.channels.base import Background, Capabilities, ChannelKind, Inbound, Outgoing, WebhookAnswer, WindowState
from hub.channels.instagram import window
from hub.channels.instagram.compose import KINDS, MAX_QUICK_REPLIES, MAX_TEXT, MEDIA_TYPES
from hub.channels.instagram.parse import parse
from hub.channels.registry import register
from hub.channels.meta_signature import HEADER, verify_meta_signature

if TYPE_CHECKING:
    from hub.channels.media import Media
    from hub.channels.webhook_cache import WebhookCache
    from hub.models import Message
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault

CLOSING_SOON = timedelta(hours=2)


@register
class Instagram(ChannelKind):
    kind = "instagram"
    title = "Instagram"
    # Interactive replies go out as quick replies (buttons and list rows alike).
    capabilities = Capabilities(kinds=KINDS, media=frozenset(MEDIA_TYPES), buttons=MAX_QUICK_REPLIES,
                                list_rows=MAX_QUICK_REPLIES, quick_replies=MAX_QUICK_REPLIES, templates=False,
                                reactions=False, read_receipts=False, max_text=MAX_TEXT, window=True,
                                window_length=window.STANDARD,
                                human_agent_window=window.HUMAN_AGENT, delivery_receipts=False)
    source = "instagram"
    emulator = "hub.channels.instagram.emulator"

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.closing_soon = timedelta(minutes=config.admin.closing_soon_minutes) if config else CLOSING_SOON

    def authentic(self, channel: Any, request: Inbound) -> bool:
        """X-Hub-Signature-256: the app secret's HMAC-SHA256 of the raw body."""
        return verify_meta_signature(getattr(channel, "app_secret", ""), request.body, request.headers.get(HEADER))

    def parse(self, body: bytes) -> Any:
        return parse(body)

    def window(self, conversation: Any, now: datetime) -> WindowState:
        closes = window.standard_closes_at(conversation)
        return WindowState(applies=True, open=closes is not None and now < closes, closes_at=closes,
                           closing_soon=closes is not None and now < closes <= now + self.closing_soon,
                           after_close="human_agent", human_agent_until=window.human_agent_closes_at(conversation))

    def queue(self, session: Session, outgoing: Outgoing, *, now: datetime) -> "Message":
        from hub.channels.instagram.outbound import queue_message

        return queue_message(session, outgoing, now=now)

    def messages_per_second(self, channel: Any) -> float:
        return float(channel.mps)

    def fetch_media(self, runtime: "Runtime", channel: Any, media: dict[str, Any], message_id: int) -> "Media":
        from hub.channels.instagram.media import fetch_attachment

        return fetch_attachment(runtime, media, message_id)

    def webhook_cache(self, vault: "Vault") -> "WebhookCache[Any]":
        from hub.channels.instagram.webhook import account_cache

        return account_cache(vault)

    def receive_webhook(self, runtime: "Runtime", key: str, request: Inbound, now: datetime,
                        cache: "WebhookCache[Any] | None" = None) -> WebhookAnswer:
        from hub.channels.instagram.webhook import RECEIVING
        from hub.channels.receiver import receive_webhook

        return receive_webhook(runtime, self, RECEIVING, key, request, now, cache)

    def verify_webhook(self, runtime: "Runtime", key: str, args: Mapping[str, str]) -> WebhookAnswer:
        from hub.channels.instagram.webhook import verify

        return verify(runtime, key, args)

    def background(self, runtime: "Runtime", owner: str) -> Background:
        from hub.channels.instagram.profiles import ProfileFetcher
        from hub.channels.instagram.sender import InstagramSender

        return Background([InstagramSender(runtime, owner).run_once, ProfileFetcher(runtime).run_once])
