"""Hooks for bench/crm_sync.py: the emulator, settings against it, and the floor."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

from connectors.bitrix24 import emulator
from connectors.bitrix24.openlines import MESSAGES_PER_CALL
from connectors.bitrix24.sync import PHONES_PER_LOOKUP

KIND = "bitrix24"
RATE = 2.0  # requests a second a portal drains (non-Enterprise plans)
BURST = 50
BATCH = 50  # commands per `batch` request


class _Handle:
    def __init__(self, inner: emulator.EmulatorHandle):
        self._inner = inner
        self.base_url = inner.base_url
        self.portal = inner.portal

    @property
    def webhook_url(self) -> str:
        return self._inner.webhook_url

    def stats(self) -> dict[str, Any]:
        return self._inner.stats()

    def counts(self) -> dict[str, int]:
        return self._inner.counts()


_HOOKS: dict[str, str] = {}


@contextmanager
def start_emulator(**options: Any) -> Iterator[_Handle]:
    options.setdefault("rate", RATE)
    options.setdefault("burst", BURST)
    with emulator.serve(**options) as inner:
        handle = _Handle(inner)
        _HOOKS[handle.base_url] = inner.webhook_url
        try:
            yield handle
        finally:
            _HOOKS.pop(handle.base_url, None)


def connector_settings(base_url: str) -> dict[str, Any]:
    base_url = base_url.rstrip("/")
    hook = _HOOKS.get(base_url)
    if hook is None:
        raise LookupError(f"no emulator started by this benchkit runs at {base_url}")
    return {"portal_url": base_url, "auth_mode": "webhook", "webhook_url": hook,
            "target": "deal", "reuse": "open", "timeline": "all",
            "rate_per_second": RATE, "burst": BURST}


def floor(conversations: int, notes_per_conversation: int) -> tuple[int, float]:
    """The fewest requests and seconds the portal allows for N new conversations.

    Unavoidable commands: a contact, a deal and its notes per conversation, and the
    phone lookups that keep one contact per phone (crm.duplicate.findbycomm, 20 phones a
    command); 50 commands to a `batch` request. The portal's leaky bucket takes 50
    requests at once and then drains 2 a second, so R requests need (R - 50) / 2 s
    (counted as one drain at least, so a tiny run still has a floor to divide by).
    """
    commands = conversations * (2 + notes_per_conversation) + math.ceil(conversations / PHONES_PER_LOOKUP)
    requests = math.ceil(commands / BATCH)
    return requests, max(requests - BURST, 1) / RATE


# -- Open Lines mode: bench/crm_sync.py bitrix24 --mode chat -----------------------------------
# Messages per conversation: imconnector.send.messages carries up to 50, so three of each
# conversation keep the portal's bucket, not the burst, in charge at 2,000 conversations.
CHAT_MESSAGES = 3


class _ChatHandle(_Handle):
    def counts(self) -> dict[str, int]:
        p = self.portal
        with p.lock:
            return {"chats": len(p.ol.chats),
                    "messages": sum(1 for m in p.ol.messages.values() if m["author"] == "customer")}


@contextmanager
def start_chat_emulator(**options: Any) -> Iterator[_ChatHandle]:
    options.setdefault("rate", RATE)
    options.setdefault("burst", BURST)
    with emulator.serve(**options) as inner:
        yield _ChatHandle(inner)


def chat_settings(handle: _Handle) -> dict[str, Any]:
    """imconnector works in an app's context only: the OAuth connection, line 1."""
    p = handle.portal
    return {"portal_url": handle.base_url, "auth_mode": "oauth", "client_id": p.client_id,
            "client_secret": p.client_secret, "access_token": p.access_token, "refresh_token": p.refresh_token,
            "oauth_server_url": handle.base_url, "application_token": p.application_token,
            "mode": "openlines", "openlines_connector_id": "whatsapp_hub", "openlines_line_id": "1",
            "rate_per_second": RATE, "burst": BURST}


def chat_demo(handle: _Handle, hook_url: str) -> list[tuple[str, str]]:
    """hub demo: Test connection binds OnImConnectorMessageAdd to the hub; the page to
    read and answer the open line chats."""
    return [("Bitrix24 Open Lines (emulator)", f"{handle.base_url}/openlines")]


def chat_floor(conversations: int, messages_per_conversation: int) -> tuple[int, float]:
    """imconnector.send.messages calls of MESSAGES_PER_CALL messages (the docs give no cap;
    the chat, user and CRM binding come with the first message, by Open Lines themselves),
    through the same leaky bucket as every REST call: (R - 50) / 2 s."""
    requests = math.ceil(conversations * messages_per_conversation / MESSAGES_PER_CALL)
    return requests, max(requests - BURST, 1) / RATE
