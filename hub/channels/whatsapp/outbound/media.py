"""A message's media file, fetched fresh from WhatsApp (size-limited), for the API and
the admin alike. Media URLs from WhatsApp expire within minutes, so nothing is cached."""
from __future__ import annotations

from dataclasses import dataclass

from hub.channels.whatsapp.channels import endpoint
from hub.channels.whatsapp.outbound.client import WhatsAppClient
from hub.channels.whatsapp.errors import WhatsAppError
from hub.shared.http import TimeoutSession
from hub.models import Channel, Conversation, Message
from hub.platform.runtime import Runtime


class MediaUnavailable(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str
    filename: str


def fetch_media(runtime: Runtime, message_id: int) -> Media:
    with runtime.db.scope() as session:
        message = session.get(Message, message_id)
        media = ((message.payload or {}).get("media") if message else None) or {}
        if message is None or not media.get("id"):
            raise MediaUnavailable(404, f"message {message_id} has no media")
        channel = session.get(Channel, session.get(Conversation, message.conversation_id).channel_id)
        session.expunge(channel)
    if channel.kind == "telegram":
        from hub.channels.telegram.media import fetch_file

        return fetch_file(runtime, channel, media, message_id)
    if channel.kind == "instagram":
        from hub.channels.instagram.media import fetch_attachment

        return fetch_attachment(runtime, media, message_id)
    client = WhatsAppClient(endpoint(channel, runtime.vault, runtime.config),
                            TimeoutSession(runtime.config.delivery.http_timeout_seconds))
    try:
        info = client.media_info(media["id"])
        data, content_type = client.download(info["url"], max_bytes=runtime.config.whatsapp.media_max_bytes)
    except WhatsAppError as exc:
        raise MediaUnavailable(413 if exc.http_status == 413 else 502,
                               f"could not fetch the media from WhatsApp: {exc}") from None
    except KeyError:
        raise MediaUnavailable(502, "WhatsApp returned no media URL") from None
    return Media(data, content_type or media.get("mime_type") or "application/octet-stream",
                 media.get("filename") or str(message_id))
