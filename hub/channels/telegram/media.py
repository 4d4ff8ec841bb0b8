"""A Telegram message's file, fetched fresh (getFile, then the file URL, valid for an
hour; bots may download up to 20 MB), for /api/v1/messages/<id>/media and signed links."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.channels.media import Media, MediaUnavailable
from hub.channels.telegram.channels import client_for
from hub.channels.telegram.client import TelegramError

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime


def fetch_file(runtime: "Runtime", channel: Any, media: dict[str, Any], message_id: int) -> Media:
    client = client_for(channel, runtime)
    try:
        info = client.get_file(media["id"])
        path = info.get("file_path") if isinstance(info, dict) else None
        if not path:
            raise MediaUnavailable(502, "Telegram returned no file path (files over 20 MB cannot be downloaded)")
        data = client.download(path, max_bytes=runtime.config.whatsapp.media_max_bytes)
    except TelegramError as exc:
        raise MediaUnavailable(413 if exc.code == 413 else 502,
                               f"could not fetch the file from Telegram: {exc.code} {exc.description}") from None
    return Media(data, media.get("mime_type") or "application/octet-stream",
                 media.get("filename") or path.rsplit("/", 1)[-1] or str(message_id))
