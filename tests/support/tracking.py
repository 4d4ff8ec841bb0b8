"""Tracking test helpers: links, visits through /l/<slug>, first messages quoting codes."""
from __future__ import annotations

import itertools
import time
from urllib.parse import parse_qs, urlsplit

from hub.platform.db import utcnow
from hub.tracking.links import create_link
from tests.support.whatsapp import PHONE_NUMBER_ID, envelope

TEMPLATE = "Hello! My request number: {code}"
_ids = itertools.count(1)


def make_link(runtime, channel_id: int, slug: str = "spring-sale", **extra) -> int:
    data = {"slug": slug, "channel_id": channel_id, "campaign": "Spring sale", "text_template": TEMPLATE,
            "utm_source": "site", "utm_medium": "button", **extra}
    with runtime.db.scope() as session:
        return create_link(session, data, now=utcnow()).id


def visit(client, slug: str = "spring-sale", **query):
    """GET /l/<slug>; returns (response, the code in the prefilled text or None)."""
    response = client.get(f"/l/{slug}", query_string=query)
    code = None
    if response.status_code == 302:
        text = parse_qs(urlsplit(response.headers["Location"]).query)["text"][0]
        code = text.rsplit(" ", 1)[-1]
    return response, code


def prefilled(response) -> str:
    return parse_qs(urlsplit(response.headers["Location"]).query)["text"][0]


def text_message(body: str, *, wa_id: str = "15557654321", name: str = "Ana Souza", timestamp: int | None = None,
                 phone_number_id: str = PHONE_NUMBER_ID, forwarded: bool = False) -> bytes:
    """A Cloud API webhook carrying one text message from `wa_id`."""
    message = {"from": wa_id, "id": f"wamid.TRACKING{next(_ids):08d}{wa_id}",
               "timestamp": str(timestamp or int(time.time())), "type": "text", "text": {"body": body}}
    if forwarded:
        message["context"] = {"forwarded": True}
    return envelope({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [message],
    })
