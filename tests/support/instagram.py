"""Instagram test helpers: an account channel without the network, signed posts of
fixtures (tests/fixtures/instagram), and the emulator wired to a hub under test."""
from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Iterator

from hub.channels.meta_signature import sign_meta
from hub.platform.db import utcnow
from hub.models import Channel
from hub.shared.security import random_key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "instagram"
IG_ID = "17841400000000001"
ANA = "1234567890123456"
APP_SECRET = "ig-app-secret-0123456789abcdef"
VERIFY_TOKEN = "ig-verify-token-42"
TOKEN = "IGAAtest-access-token-0123456789abcdefghijkl"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def make_account_channel(runtime, *, name: str = "Shop Instagram", ig_id: str = IG_ID,
                         app_secret: str = APP_SECRET, api_base_url: str = "") -> tuple[int, str]:
    """An Instagram channel row as create_instagram_channel leaves it (no call to Meta)."""
    now = utcnow()
    with runtime.db.scope() as session:
        channel = Channel(key=random_key(), kind="instagram", provider="instagram", name=name,
                          phone_number_id=f"ig:{ig_id}", display_number="@shop", api_base_url=api_base_url,
                          mps=20, health="ok", created_at=now, updated_at=now,
                          secrets_enc=runtime.vault.encrypt({"access_token": TOKEN, "app_secret": app_secret,
                                                             "verify_token": VERIFY_TOKEN}))
        session.add(channel)
        session.flush()
        return channel.id, channel.key


def post_webhook(client, key: str, body: bytes, secret: str | None = APP_SECRET, signature: str | None = None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign_meta(secret, body)
    return client.post(f"/webhooks/instagram/{key}", data=body, headers=headers)


@contextlib.contextmanager
def wired(runtime, client, clock=None, **limits) -> Iterator[dict]:
    """An emulated account added to the hub through create_instagram_channel (GET
    /{ig-user-id}?fields=username), its webhooks POSTed into the Flask test client."""
    from hub.channels.instagram.channels import create_instagram_channel
    from hub.channels.instagram.emulator import InstagramEmulator
    from hub.models import Channel as ChannelRow
    from tests.support.telegram import FlaskTransport

    emu = InstagramEmulator(clock, transport=FlaskTransport(client), **limits)
    account = emu.add_account("shop", IG_ID, token=TOKEN, app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)
    with emu.serve() as base:
        channel_id = create_instagram_channel(runtime, {
            "name": "Shop Instagram", "ig_user_id": account.id, "access_token": account.token,
            "app_secret": account.app_secret, "verify_token": account.verify_token, "api_base_url": base},
            now=utcnow())
        with runtime.db.scope() as session:
            key = session.get(ChannelRow, channel_id).key
        emu.subscribe(account, f"http://hub.test/webhooks/instagram/{key}")
        yield {"emu": emu, "account": account, "base": base, "channel_id": channel_id, "key": key}


def worker(runtime, clock=None):
    from hub.channels.instagram.sender import InstagramSender
    from hub.crm.worker import Worker

    kwargs = {"clock": clock} if clock else {}
    sender = InstagramSender(runtime, "test-worker", rng=random.Random(1), **kwargs)
    return Worker(runtime.db, runtime.vault, runtime.config, owner="test-worker", sources=[sender.run_once],
                  **kwargs)
