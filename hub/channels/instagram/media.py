"""An Instagram attachment's file, fetched fresh from Meta's CDN (the lookaside URL in
the signed webhook is the attachment's only handle; it needs no token, so none is
sent), size-limited, for /api/v1/messages/<id>/media and the admin."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from hub.channels.media import Media, MediaUnavailable
from hub.shared.http import TimeoutSession

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime


def fetch_attachment(runtime: "Runtime", media: dict[str, Any], message_id: int) -> Media:
    url = str(media.get("link") or media.get("id") or "")
    if not url.startswith(("https://", "http://")):
        raise MediaUnavailable(404, f"message {message_id} has no attachment URL")
    limit = runtime.config.whatsapp.media_max_bytes
    try:
        response = TimeoutSession(runtime.config.delivery.http_timeout_seconds).get(url, stream=True)
    except requests.RequestException as exc:
        raise MediaUnavailable(502, f"could not fetch the attachment from Instagram ({type(exc).__name__})") from None
    with response:
        if response.status_code >= 400:
            raise MediaUnavailable(502, f"Instagram's CDN answered HTTP {response.status_code} (attachment links "
                                        f"expire; the customer may need to send it again)")
        data = bytearray()
        for chunk in response.iter_content(64 * 1024):
            data += chunk
            if len(data) > limit:
                raise MediaUnavailable(413, f"the attachment is over the {limit}-byte limit")
        content_type = response.headers.get("Content-Type") or media.get("mime_type") or "application/octet-stream"
    return Media(bytes(data), content_type.split(";")[0], media.get("filename") or str(message_id))
