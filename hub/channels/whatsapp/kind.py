"""WhatsApp on the channel contract (hub.channels.base): the Cloud API, or a 360dialog
relay of it. Thin on purpose: each method hands over to the module that owns the rule."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Mapping

from sqlalchemy.orm import Session

from hub.channels.base import Background, Capabilities, ChannelKind, Inbound, Outgoing, WebhookAnswer, WindowState
from hub.channels.registry import register
from hub.channels.whatsapp.outbound import window
from hub.channels.whatsapp.outbound.compose import FREE_FORM_TYPES, MEDIA_TYPES
from hub.channels.whatsapp.inbound.parse import parse
from hub.channels.meta_signature import verify_meta_signature
from hub.shared.security import constant_time_equal

if TYPE_CHECKING:
    from hub.channels.media import Media
    from hub.channels.webhook_cache import WebhookCache
    from hub.models import Message
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault

# Unless [whatsapp] d360_webhook_header / [admin] closing_soon_minutes say otherwise.
D360_HEADER = "X-Hub-Token"
CLOSING_SOON = timedelta(hours=2)


@register
class WhatsApp(ChannelKind):
    kind = "whatsapp"
    title = "WhatsApp Business Platform"
    capabilities = Capabilities(
        kinds=frozenset(FREE_FORM_TYPES | {"template", "read"}),
        media=frozenset(MEDIA_TYPES),
        buttons=3, list_rows=10, templates=True, reactions=True, read_receipts=True, max_text=4096,
        window_length=window.WINDOW,
    )
    source = "whatsapp"
    emulator = "hub.channels.whatsapp.emulator"

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.d360_header = config.whatsapp.d360_webhook_header if config else D360_HEADER
        self.closing_soon = timedelta(minutes=config.admin.closing_soon_minutes) if config else CLOSING_SOON

    def authentic(self, channel: Any, request: Inbound) -> bool:
        """360dialog: the per-number header token; Meta: X-Hub-Signature-256 over the body."""
        if channel.provider == "360dialog":
            expected = channel.webhook_token
            return bool(expected) and constant_time_equal(request.headers.get(self.d360_header, ""), expected)
        return verify_meta_signature(channel.app_secret, request.body, request.headers.get("X-Hub-Signature-256"))

    def parse(self, body: bytes) -> Any:
        return parse(body)

    def window(self, conversation: Any, now: datetime) -> WindowState:
        return WindowState(applies=True, open=window.is_open(conversation, now),
                           closes_at=window.closes_at(conversation),
                           closing_soon=window.closing_soon(conversation, now, self.closing_soon),
                           after_close="template")

    def queue(self, session: Session, outgoing: Outgoing, *, now: datetime) -> "Message":
        from hub.channels.whatsapp.outbound.queue import queue_message

        return queue_message(session, kind=outgoing.kind, content=outgoing.content, template=outgoing.template,
                             conversation_id=outgoing.conversation_id, channel_id=outgoing.channel_id,
                             to=outgoing.to, reply_to=outgoing.reply_to, author_id=outgoing.author_id, now=now)

    def messages_per_second(self, channel: Any) -> float:
        return float(channel.mps)

    def fetch_media(self, runtime: "Runtime", channel: Any, media: dict[str, Any], message_id: int) -> "Media":
        from hub.channels.whatsapp.outbound.media import fetch_from_whatsapp

        return fetch_from_whatsapp(runtime, channel, media, message_id)

    def webhook_cache(self, vault: "Vault") -> "WebhookCache[Any]":
        from hub.channels.whatsapp.inbound.channel_cache import WebhookChannels

        return WebhookChannels(vault)

    def receive_webhook(self, runtime: "Runtime", key: str, request: Inbound, now: datetime,
                        cache: "WebhookCache[Any] | None" = None) -> WebhookAnswer:
        from hub.channels.receiver import receive_webhook
        from hub.channels.whatsapp.inbound.webhook import RECEIVING

        return receive_webhook(runtime, self, RECEIVING, key, request, now, cache)

    def verify_webhook(self, runtime: "Runtime", key: str, args: Mapping[str, str]) -> WebhookAnswer:
        from hub.channels.whatsapp.inbound.webhook import verify

        return verify(runtime, key, args)

    def usable_templates(self, session: Session, channel: Any) -> list[Any]:
        """The approved templates of the number's WhatsApp Business Account."""
        from hub.channels.whatsapp.templates.parameters import usable

        return usable(session, channel.waba_id)

    def template_variables(self, template: Any) -> int | list[str]:
        from hub.channels.whatsapp.templates.parameters import body_parameters

        return body_parameters(template)

    def template_text(self, template: Any) -> str:
        from hub.channels.whatsapp.templates.parameters import component

        return (component(template, "BODY") or {}).get("text", "")

    def background(self, runtime: "Runtime", owner: str) -> Background:
        """Send queued messages under each number's limit; sync templates when asked."""
        from hub.channels.whatsapp.outbound.sender import Sender
        from hub.channels.whatsapp.templates.sync import TemplateSyncer

        return Background([Sender(runtime, owner).run_once, TemplateSyncer(runtime).run_once])
