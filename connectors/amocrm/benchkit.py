"""What bench/crm_sync.py needs to run the amoCRM connector against its emulator.

The floor is the fewest requests amoCRM's batch sizes allow for N new conversations
(contact + deal + notes each), at amoCRM's 7 requests per second:
    ceil(N / 50) leads/complex requests (each creates 50 deals with their new contacts)
  + ceil(N * notes / 50) notes requests (50 notes per request, any mix of deals).
"""
from __future__ import annotations

import math
from typing import Any

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
