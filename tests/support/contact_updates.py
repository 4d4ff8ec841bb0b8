"""contact.updated events as the hub emits them, and delivering one, for the CRM
connectors' contact-update tests."""
from __future__ import annotations

from typing import Any

from connectors.base import HubEvent
from hub.platform.db import utcnow


def updated(contact: dict[str, Any], changes: dict[str, dict[str, Any]], *, eid: str = "evt-upd-1") -> HubEvent:
    """The event for `contact` (its values before) after `changes` ({field: {old, new}})."""
    now = {**contact, **{k: v["new"] for k, v in changes.items()}}
    return HubEvent(eid, "contact.updated", 1, utcnow(), {"contact": now, "changes": changes},
                    ordering_key=f"contact:{contact['id']}")


def only(connector, event: HubEvent):
    """The one outcome of delivering `event` alone."""
    (outcome,) = connector.deliver([event])
    return outcome
