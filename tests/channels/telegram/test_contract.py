"""Telegram on the channel contract: no window, what it carries, no delivery receipts,
the secret token, and its own worker source."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from hub.channels import registry
from hub.channels.base import Inbound, WindowState
from hub.channels.telegram.kind import Telegram
from hub.channels.whatsapp.kind import WhatsApp

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


@dataclass
class Bot:
    secret_token: str


@dataclass
class Row:
    kind: str


def test_the_kind_is_registered_and_found_by_a_rows_kind():
    assert isinstance(registry.get("telegram"), Telegram)
    assert isinstance(registry.of(Row("telegram")), Telegram) and isinstance(registry.of(Row("whatsapp")), WhatsApp)


def test_there_is_no_window_and_the_contract_says_so_per_kind():
    assert Telegram().window(object(), NOW) == WindowState.none()
    assert Telegram.capabilities.window is False and WhatsApp.capabilities.window is True
    assert WhatsApp().window(type("C", (), {"last_inbound_at": None})(), NOW).applies


def test_capabilities_and_no_delivery_or_read_receipts():
    caps = Telegram.capabilities
    assert caps.supports("text") and caps.supports("image") and caps.supports("location")
    assert not caps.supports("template") and not caps.supports("reaction") and not caps.templates
    assert caps.supports("interactive") and (caps.buttons, caps.list_rows) == (3, 10)
    assert caps.media == {"image", "video", "audio", "document", "sticker"} and caps.max_text == 4096
    assert (caps.read_receipts, caps.delivery_receipts) == (False, False)
    assert WhatsApp.capabilities.delivery_receipts is True


def test_authentic_is_the_secret_token_header():
    kind = Telegram()
    assert kind.authentic(Bot("s3cret"), Inbound({"X-Telegram-Bot-Api-Secret-Token": "s3cret"}, b"{}"))
    assert not kind.authentic(Bot("s3cret"), Inbound({"X-Telegram-Bot-Api-Secret-Token": "other"}, b"{}"))
    assert not kind.authentic(Bot("s3cret"), Inbound({}, b"{}"))
    assert not kind.authentic(Bot(""), Inbound({"X-Telegram-Bot-Api-Secret-Token": ""}, b"{}"))


def test_workers_get_the_telegram_sender(runtime):
    from hub.processes import make_worker

    names = [getattr(source, "__qualname__", "") for source in make_worker(runtime).sources]
    assert any(name.startswith("TelegramSender.") for name in names)
    assert any(name.startswith("Sender.") for name in names)
