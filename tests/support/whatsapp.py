"""WhatsApp test helpers: channels matching the fixtures' ids, signed posts."""
from __future__ import annotations

import json
from pathlib import Path

from hub.channels.whatsapp.channels import create_channel
from hub.channels.meta_signature import sign_meta
from hub.platform.db import utcnow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp"
PHONE_NUMBER_ID = "2200000000000002"
WABA_ID = "1100000000000001"
APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "verify-me-please"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def make_channel(runtime, *, provider: str = "cloud", phone_number_id: str = PHONE_NUMBER_ID,
                 waba_id: str = WABA_ID, name: str = "Sales", api_base_url: str = "", **extra) -> tuple[int, str]:
    data = {"name": name, "provider": provider, "phone_number_id": phone_number_id, "waba_id": waba_id,
            "display_number": "+1 555 000 1111", "api_base_url": api_base_url, "verify_token": VERIFY_TOKEN,
            **extra}
    if provider == "cloud":
        data.update(access_token=extra.get("access_token", "EAAG-test-token"), app_secret=APP_SECRET)
    else:
        data.update(d360_api_key=extra.get("d360_api_key", "d360-test-key"),
                    webhook_token=extra.get("webhook_token", "d360-webhook-token"))
    with runtime.db.scope() as session:
        channel = create_channel(session, runtime.vault, data, now=utcnow())
        return channel.id, channel.key


def post_signed(client, key: str, body: bytes, secret: str = APP_SECRET, **headers):
    return client.post(f"/webhooks/whatsapp/{key}", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign_meta(secret, body), **headers})


def envelope(value: dict, field: str = "messages", waba_id: str = WABA_ID) -> bytes:
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": waba_id, "changes": [{"field": field, "value": value}]}]}).encode()
