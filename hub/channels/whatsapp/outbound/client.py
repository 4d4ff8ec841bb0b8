"""Calls to the WhatsApp Cloud API (Graph) or a 360dialog relay, for one channel."""
from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import requests

from hub.channels.whatsapp.channels import Endpoint
from hub.channels.whatsapp.errors import WhatsAppError, from_response

META_MEDIA_HOST = "lookaside.fbsbx.com"


class WhatsAppClient:
    def __init__(self, endpoint: Endpoint, http: requests.Session):
        self.endpoint = endpoint
        self.http = http

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.endpoint.headers, **kwargs.pop("headers", {})}
        try:
            response = self.http.request(method, url, headers=headers, **kwargs)
        except requests.Timeout:
            raise WhatsAppError(None, "timed out waiting for the WhatsApp API") from None
        except requests.RequestException as exc:
            raise WhatsAppError(None, f"could not reach the WhatsApp API: {type(exc).__name__}") from None
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            retry_after = response.headers.get("Retry-After")
            raise from_response(response.status_code, body,
                                float(retry_after) if retry_after and retry_after.isdigit() else None)
        return body

    # -- messages ---------------------------------------------------------------
    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a message; returns {"wa_message_id", "wa_id", "message_status"}."""
        answer = self._call("POST", self.endpoint.messages_url, json=body) or {}
        messages = answer.get("messages") or [{}]
        contacts = answer.get("contacts") or [{}]
        if not messages[0].get("id"):
            if answer.get("success") is True or body.get("status") == "read":
                return {"wa_message_id": None, "wa_id": None, "message_status": None}
            raise WhatsAppError(None, "the API accepted the message but returned no id")
        return {"wa_message_id": messages[0]["id"], "wa_id": contacts[0].get("wa_id"),
                "message_status": messages[0].get("message_status")}

    # -- media ------------------------------------------------------------------
    def media_info(self, media_id: str) -> dict[str, Any]:
        params = {"phone_number_id": self.endpoint.phone_number_id} if self.endpoint.provider == "cloud" else {}
        return self._call("GET", f"{self.endpoint.base_url}/{media_id}", params=params) or {}

    def media_download_url(self, url: str) -> str:
        """360dialog: Meta's media host is replaced by the relay's, path and query kept, so
        the relay key is never sent to Meta."""
        if self.endpoint.provider != "360dialog":
            return url
        parts = urlsplit(url)
        relay = urlsplit(self.endpoint.base_url)
        return urlunsplit((relay.scheme, relay.netloc, parts.path, parts.query, ""))

    def download(self, url: str, *, max_bytes: int) -> tuple[bytes, str]:
        """The file (bounded) and its content type; bearer auth as Meta requires."""
        target = self.media_download_url(url)
        headers = dict(self.endpoint.headers)
        try:
            response = self.http.get(target, headers=headers, stream=True)
        except requests.RequestException as exc:
            raise WhatsAppError(None, f"could not download media: {type(exc).__name__}") from None
        with response:
            if response.status_code >= 400:
                raise WhatsAppError(None, f"media download failed with HTTP {response.status_code}",
                                    http_status=response.status_code)
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise WhatsAppError(None, f"media is {declared} bytes, over the {max_bytes}-byte limit",
                                    http_status=413)
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise WhatsAppError(None, f"media is over the {max_bytes}-byte limit", http_status=413)
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("Content-Type", "application/octet-stream")

    # -- templates and number ------------------------------------------------------
    def templates(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every template of the account, following `paging.next` until it ends."""
        if self.endpoint.provider == "360dialog":
            url = f"{self.endpoint.base_url}/v1/configs/templates"
            params: dict[str, Any] | None = {"limit": page_size}
        else:
            url = f"{self.endpoint.base_url}/{self.endpoint.waba_id}/message_templates"
            params = {"limit": page_size,
                      "fields": "id,name,language,status,category,components,quality_score,"
                                "parameter_format,rejected_reason"}
        seen_pages = 0
        while url:
            page = self._call("GET", url, params=params) or {}
            items = page.get("data", page.get("waba_templates", []))
            yield from items
            url = (page.get("paging") or {}).get("next")
            params = None  # `next` carries the query already
            seen_pages += 1
            if seen_pages > 10_000:
                raise WhatsAppError(None, "template paging did not end")

    def phone_number(self) -> dict[str, Any]:
        fields = "display_phone_number,verified_name,quality_rating,throughput," \
                 "whatsapp_business_manager_messaging_limit,status"
        if self.endpoint.provider == "360dialog":
            return {}
        return self._call("GET", f"{self.endpoint.base_url}/{self.endpoint.phone_number_id}",
                          params={"fields": fields}) or {}
