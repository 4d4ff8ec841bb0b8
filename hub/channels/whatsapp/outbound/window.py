"""The 24-hour customer service window and the 72-hour free entry point (FEP).

Both decide what may be sent and what it costs, so they are pure functions of stored
timestamps and an explicit `now`: the caller passes the clock, tests pass any instant.
Timestamps are WhatsApp's (the webhook `timestamp`), not receipt time, and must be
timezone-aware (hub.channels.window: naive values are refused rather than guessed).

Rules (protocol sheet §10):
- the window is open iff now < last user message + 24 h (exactly 24 h later it is closed);
- a user message from a Click-to-WhatsApp ad (carrying `referral`) makes the business's
  first reply within 24 h free and starts a 72 h FEP from that reply;
- the FEP does not extend the window: after the window closes only templates may be sent,
  and they are free until the FEP ends.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from hub.channels.window import HasWindow, aware

WINDOW = timedelta(hours=24)
FEP_REPLY_WITHIN = timedelta(hours=24)
FEP_DURATION = timedelta(hours=72)


class HasEntryPoint(Protocol):
    """Anything that records a Click-to-WhatsApp entry and the FEP it started."""

    @property
    def ctwa_entry_at(self) -> datetime | None: ...

    @property
    def fep_expires_at(self) -> datetime | None: ...


def closes_at(conversation: HasWindow) -> datetime | None:
    """When the customer service window closes (None: the user never wrote)."""
    last = conversation.last_inbound_at
    if last is None:
        return None
    return aware(last, "last_inbound_at") + WINDOW


def is_open(conversation: HasWindow, now: datetime) -> bool:
    """May a free-form (non-template) message be sent at `now`?"""
    closes = closes_at(conversation)
    return closes is not None and aware(now, "now") < closes


def closing_soon(conversation: HasWindow, now: datetime, within: timedelta) -> bool:
    """Is the window still open but closing within `within` (for reminders to operators)?"""
    if within < timedelta(0):
        raise ValueError("within must not be negative")
    closes = closes_at(conversation)
    return closes is not None and aware(now, "now") < closes <= now + within


def fep_start_on_reply(conversation: HasEntryPoint, reply_at: datetime) -> datetime | None:
    """The FEP expiry a business reply sent at `reply_at` starts, or None if it starts none.

    A reply starts the FEP when it is sent within 24 h of the Click-to-WhatsApp entry
    (from the entry itself, up to but excluding 24 h later) and no FEP has started since
    that entry. An FEP that ended before a newer ad entry does not block a new one; an
    ad entry while an FEP runs does not restart it (Meta documents no restart).
    """
    entry = conversation.ctwa_entry_at
    if entry is None:
        return None
    entry = aware(entry, "ctwa_entry_at")
    reply_at = aware(reply_at, "reply_at")
    if not entry <= reply_at < entry + FEP_REPLY_WITHIN:
        return None
    current = conversation.fep_expires_at
    if current is not None and aware(current, "fep_expires_at") > entry:
        return None  # an FEP already started from this entry (or was running at it)
    return reply_at + FEP_DURATION


def fep_open(conversation: HasEntryPoint, now: datetime) -> bool:
    """Is a free entry point window running at `now`?"""
    expires = conversation.fep_expires_at
    return expires is not None and aware(now, "now") < aware(expires, "fep_expires_at")


def entry_point_free(conversation: HasEntryPoint, at: datetime) -> bool:
    """Is a message sent at `at` covered by the FEP, either inside a running one or as
    the reply that starts one? This is the `fep_open` fact for pricing."""
    return fep_open(conversation, at) or fep_start_on_reply(conversation, at) is not None
