"""A WhatsApp message's media file: its URL from the Graph API (or the relay), then the
file, size-limited and with the channel's token (never sent to another host)."""
from __future__ import annotations

from typing import Any

from hub.channels.media import Media, MediaUnavailable
from hub.channels.whatsapp.channels import endpoint
from hub.channels.whatsapp.outbound.client import WhatsAppClient
from hub.channels.whatsapp.errors import WhatsAppError
from hub.shared.http import TimeoutSession
from hub.models import Channel
from hub.platform.runtime import Runtime


def fetch_from_whatsapp(runtime: Runtime, channel: Channel, media: dict[str, Any], message_id: int) -> Media:
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
