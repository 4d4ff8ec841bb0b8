"""A message's media file, fetched fresh from its channel (size-limited), for the API,
the admin and signed media links alike. Channels' media URLs expire (WhatsApp's within
minutes, Telegram's within the hour, Instagram's CDN links unannounced), so nothing is
cached; each kind fetches its own way (ChannelKind.fetch_media)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from hub.channels import registry
from hub.channels.base import Media, MediaUnavailable
from hub.models import Channel, Conversation, Message

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime


def fetch_media(runtime: "Runtime", message_id: int) -> Media:
    """The file of message `message_id`, from the channel it came through."""
    with runtime.db.scope() as session:
        message = session.get(Message, message_id)
        media = ((message.payload or {}).get("media") if message else None) or {}
        if message is None or not media.get("id"):
            raise MediaUnavailable(404, f"message {message_id} has no media")
        channel = session.get(Channel, session.get(Conversation, message.conversation_id).channel_id)
        session.expunge(channel)
    return registry.of(channel, runtime.config).fetch_media(runtime, channel, media, message_id)
