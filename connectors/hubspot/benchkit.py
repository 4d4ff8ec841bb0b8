"""Hooks for the shared benchmark driver bench/crm_sync.py."""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

from connectors.hubspot import emulator, mapping

KIND = "hubspot"
PER_10_SECONDS = 100  # the emulated account's burst limit (Free/Starter)


@contextlib.contextmanager
def start_emulator(**options: Any) -> Iterator[emulator.EmulatorHandle]:
    """`with start_emulator() as emu: emu.base_url, emu.stats(), emu.counts()`; the account
    already has the custom properties the connector uses (as after "Create missing
    properties" in the admin)."""
    options.setdefault("per_10_seconds", PER_10_SECONDS)
    with emulator.serve(**options) as handle:
        prepare(handle)
        yield handle


def connector_settings(base_url: str) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "access_token": emulator.Options().token,
        "client_secret": emulator.Options().client_secret,
        "rate_limit_per_10s": PER_10_SECONDS,
        "pipeline_id": "default",
        "stage_id": "appointmentscheduled",
    }


def prepare(handle: emulator.EmulatorHandle, settings: dict[str, Any] | None = None) -> None:
    """Create the custom properties the settings use (what Test connection does in the admin)."""
    from connectors.hubspot import properties
    from connectors.hubspot.settings import HubSpotSettings
    loaded = HubSpotSettings().load(settings or connector_settings(handle.base_url))
    for object_type, d in properties.required(loaded):
        handle.add_property(object_type, d["name"], unique=d["hasUniqueValue"])


def floor(conversations: int, notes_per_conversation: int) -> tuple[int, float]:
    """The fewest requests HubSpot's documented API allows for N new conversations, and
    that at the general limit (100 per rolling 10 s; searches count there too).

    Unavoidable: the contacts, deals and communications themselves, 100 inputs per batch
    create, associations given inline with each input (no association requests); and
    one search per 100 new contacts, because a contact must not be created for a phone
    HubSpot already has (an IN filter takes 100 values; the phone and mobilephone groups
    of one search cover the same 100 numbers). The search API's own 5 a second is not
    what binds: one search goes with every 5 other requests.
    """
    per = mapping.BATCH_LIMIT
    searches = math.ceil(conversations / mapping.SEARCH_VALUES_LIMIT)
    requests = (searches + math.ceil(conversations / per) * 2
                + math.ceil(conversations * notes_per_conversation / per))
    return requests, requests / (PER_10_SECONDS / 10.0)


# -- inbox mode (custom channels): bench/crm_sync.py hubspot --mode chat -----------------------
CHAT_MESSAGES = 1  # messages per conversation: a custom channel takes one message a request
INBOX_ID = "147959634"  # the emulated account's "Sales inbox"


class ChatHandle:
    """The account with its Conversations inbox; counts are threads and customers' messages."""

    def __init__(self, handle: emulator.EmulatorHandle):
        self.handle = handle
        self.base_url = handle.base_url

    def stats(self) -> dict[str, Any]:
        return self.handle.stats()

    def counts(self) -> dict[str, int]:
        with self.handle.state.lock:
            messages = self.handle.inbox.inbox.messages.values()
            return {"chats": len(self.handle.inbox.inbox.threads),
                    "messages": sum(1 for m in messages if m["direction"] == "INCOMING")}


@contextlib.contextmanager
def start_chat_emulator(**options: Any) -> Iterator[ChatHandle]:
    with start_emulator(**options) as handle:
        yield ChatHandle(handle)


def chat_settings(chat: ChatHandle) -> dict[str, Any]:
    """Custom channels need the public app (OAuth); Test connection registers the channel."""
    handle, options = chat.handle, chat.handle.state.options
    settings = connector_settings(handle.base_url)
    settings.update(auth_mode="oauth", access_token="", client_id=options.client_id,
                    client_secret=options.client_secret, redirect_uri=options.redirect_uri,
                    authorization_code=handle.issue_code(), mode="inbox", inbox_id=INBOX_ID,
                    developer_api_key=handle.inbox.inbox.developer_api_key, app_id=handle.inbox.inbox.app_id)
    return settings


def chat_demo(chat: ChatHandle, hook_url: str) -> list[tuple[str, str]]:
    """hub demo: Test connection registers the custom channel with the hub's hook as its
    webhookUrl; the page to read and answer the inbox threads."""
    from connectors.hubspot.emulator_inbox import PAGE_PATH

    return [("HubSpot inbox (emulator)", f"{chat.base_url}{PAGE_PATH}")]


def chat_floor(conversations: int, messages_per_conversation: int) -> tuple[int, float]:
    """One publish per customer message (a custom channel has no batch publish; the thread
    comes with the first message), plus the number's channel account: looked up once and
    created once. All at the general 100 per rolling 10 s."""
    requests = conversations * messages_per_conversation + 2
    return requests, requests / (PER_10_SECONDS / 10.0)
