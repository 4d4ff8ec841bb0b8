"""Telegram test helpers: a bot channel without the network, signed posts of fixtures,
and the emulator wired to a hub under test (updates into the Flask test client, the
hub's Bot API calls to the emulator over loopback HTTP)."""
from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Iterator

from hub.channels.telegram.channels import create_telegram_channel
from hub.channels.telegram.emulator import TelegramEmulator
from hub.channels.telegram.sender import TelegramSender
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Channel
from hub.shared.security import random_key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
SECRET = "tg-secret_token-0123456789"
TOKEN = "7000000001:AAtest-token-0123456789abcdefghijkl"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def make_bot_channel(runtime, *, name: str = "Shop bot", secret: str = SECRET, bot_id: int = 7000000001,
                     api_base_url: str = "") -> tuple[int, str]:
    """A Telegram channel row as create_telegram_channel leaves it (no getMe/setWebhook)."""
    now = utcnow()
    with runtime.db.scope() as session:
        channel = Channel(key=random_key(), kind="telegram", provider="bot_api", name=name,
                          phone_number_id=f"tg:{bot_id}", display_number="@shop_bot", api_base_url=api_base_url,
                          mps=30, health="ok", created_at=now, updated_at=now,
                          secrets_enc=runtime.vault.encrypt({"bot_token": TOKEN, "secret_token": secret}))
        session.add(channel)
        session.flush()
        return channel.id, channel.key


def post_update(client, key: str, body: bytes, secret: str | None = SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[HEADER] = secret
    return client.post(f"/webhooks/telegram/{key}", data=body, headers=headers)


class FlaskTransport:
    """The emulator's webhook POSTs into a Flask test client (path and query only)."""

    def __init__(self, client):
        self.client = client

    def __call__(self, url: str, body: bytes, headers):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return self.client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=body,
                                headers=dict(headers))


@contextlib.contextmanager
def wired(runtime, client, clock=None, **limits) -> Iterator[dict]:
    """An emulated bot added to the hub through create_telegram_channel (getMe, setWebhook)."""
    emu = TelegramEmulator(clock, transport=FlaskTransport(client), **limits)
    bot = emu.add_bot("shop_bot", "Shop")
    with emu.serve() as base:
        registered = create_telegram_channel(runtime, {"name": "Shop", "bot_token": bot.token, "api_base_url": base},
                                             now=utcnow())
        assert registered.webhook_error is None, registered.webhook_error
        yield {"emu": emu, "bot": bot, "base": base, "channel_id": registered.channel_id}


def worker(runtime, clock=None) -> Worker:
    kwargs = {"clock": clock} if clock else {}
    sender = TelegramSender(runtime, "test-worker", rng=random.Random(1), **kwargs)
    return Worker(runtime.db, runtime.vault, runtime.config, owner="test-worker", sources=[sender.run_once],
                  **kwargs)
