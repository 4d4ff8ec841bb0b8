"""What bench/crm_sync.py needs to run the amoCRM connector against its emulator.

The floor is the fewest requests amoCRM's batch sizes allow for N new conversations
(contact + deal + notes each), at amoCRM's 7 requests per second:
    ceil(N / 50) leads/complex requests (each creates 50 deals with their new contacts)
  + ceil(N * notes / 50) notes requests (50 notes per request, any mix of deals).
Chat mode (amojo) has its own floor: chat_floor().
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

from connectors.amocrm.emulator import LONG_LIVED_TOKEN, Served, serve
from connectors.amocrm.emulator_store import DEFAULT_PIPELINES
from connectors.amocrm.leads import COMPLEX_BATCH
from connectors.amocrm.sync import NOTES_BATCH

KIND = "amocrm"
RATE_LIMIT = 7.0  # requests per second per account


def start_emulator(**options: Any) -> Served:
    """A context manager; the handle has .base_url, .stats() and .counts()."""
    return serve(**options)


def connector_settings(base_url: str) -> dict[str, Any]:
    pipeline = DEFAULT_PIPELINES[0]
    return {
        "base_url": base_url,
        "long_lived_token": LONG_LIVED_TOKEN,
        "pipeline_id": pipeline["id"],
        "status_id": pipeline["statuses"][0][0],
        # A backlog of new customers: no per-phone lookup (see README, "Customers already in amoCRM").
        "existing_contacts": "create",
        "deal_mode": "reuse_open",
        "timeout_seconds": 30,
    }


def floor(conversations: int, notes_per_conversation: int) -> tuple[int, float]:
    requests = math.ceil(conversations / COMPLEX_BATCH) + math.ceil(
        conversations * notes_per_conversation / NOTES_BATCH)
    return requests, requests / RATE_LIMIT


# -- chat mode (Chats API, amojo): bench/crm_sync.py amocrm --mode chat -------------------------
CHAT_MESSAGES = 1  # messages per conversation: amojo takes one message a request


class ChatHandle:
    """The account's API and its amojo side by side; requests and refusals of both count."""

    def __init__(self, amo: Served, amojo: Any):
        self.amo = amo
        self.amojo = amojo
        self.base_url = amo.base_url

    def stats(self) -> dict[str, int]:
        api = self.amo.stats()
        chats = self.amojo.emulator.stats
        return {"requests": api["requests"] + chats["requests"],
                "rate_limited": api["rate_limited"] + chats["rate_limited"]}

    def counts(self) -> dict[str, int]:
        emu = self.amojo.emulator
        with emu.lock:
            inbound = sum(1 for m in emu.messages.values() if m["direction"] == "in")
            return {"chats": len(emu.chats), "messages": inbound}


@contextmanager
def start_chat_emulator(**options: Any) -> Iterator[ChatHandle]:
    from connectors.amocrm.emulator_amojo import serve_amojo

    with serve(**options) as amo, serve_amojo() as amojo:
        yield ChatHandle(amo, amojo)


def chat_settings(handle: ChatHandle) -> dict[str, Any]:
    from connectors.amocrm.emulator_amojo import CHANNEL_ID, CHANNEL_SECRET

    return {**connector_settings(handle.base_url), "mode": "chat", "chat_channel_id": CHANNEL_ID,
            "chat_channel_secret": CHANNEL_SECRET, "amojo_base_url": handle.amojo.base_url}


def chat_demo(handle: ChatHandle, hook_url: str) -> list[tuple[str, str]]:
    """hub demo: amojo posts managers' replies to the connector's hook (the channel's hook
    URL, set when amoCRM registers the channel); the page to read and answer the chats."""
    handle.amojo.emulator.hook_url = f"{hook_url}/:scope_id"
    return [("amoCRM chats (amojo emulator)", f"{handle.amojo.base_url}/chats")]


def chat_floor(conversations: int, messages_per_conversation: int) -> tuple[int, float]:
    """amojo has no batch method: one new_message request per customer message (the chat,
    contact and Unsorted lead come with the first), at the 7 a second it is held to."""
    requests = conversations * messages_per_conversation
    return requests, requests / RATE_LIMIT
