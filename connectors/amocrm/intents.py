"""Write-ahead intents: close the window between "amoCRM created it" and "the link is stored".

Before a POST that creates deals or notes, the connector stores an intent per item in
the hub's link store (its own short transaction). If the worker dies or the answer is
lost after amoCRM applied the POST, the next attempt finds the intent and searches
amoCRM before creating again. `HubEvent.attempt` cannot tell this: a worker killed
mid-batch never records the attempt.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from connectors.base import LinkStore

LEAD = "lead_intent"
NOTE = "note_intent"
TASK = "task_intent"


@dataclass(frozen=True)
class Intent:
    key: str
    at: float  # unix time of the first attempt that may have created the object
    earlier: bool  # True when an earlier attempt wrote it: look before creating


def _token(now: float) -> str:
    return f"{now:.3f}:{uuid.uuid4().hex[:12]}"


def _at(token: str) -> float:
    try:
        return float(token.split(":", 1)[0])
    except ValueError:
        return 0.0


def declare(links: LinkStore, kind: str, keys: list[str], now: float | None = None) -> dict[str, Intent]:
    """Store an intent for each key (existing ones win) and say which existed before."""
    now = time.time() if now is None else now
    # One transaction for the whole request's intents: one each cost more time than
    # amoCRM's rate limit leaves between two requests.
    mine = {key: _token(now) for key in keys}
    stored = links.put_many(kind, [(key, "intent", token) for key, token in mine.items()])
    out = {}
    for key, token in mine.items():
        kept = stored.get(key, token)
        out[key] = Intent(key, _at(kept), kept != token)
    return out


def earlier(links: LinkStore, kind: str, keys: list[str]) -> dict[str, Intent]:
    """Intents earlier attempts left for these keys (no writes)."""
    found = links.get_many(kind, keys)
    return {k: Intent(k, _at(v), True) for k, v in found.items()}
