"""What a customer's own words about marketing do on ingest: a stop or start keyword in
a text, or a channel's own marketing-preference webhook (WhatsApp's "Stop promotions").

The broadcasts room owns the keywords and records the consent; it installs its handling
here once per process (hub.wiring.install_reactions, as routing and automations install
theirs in hub.conversations.reactions). A channel's ingest calls the functions below in
the webhook's own transaction, so the channels never import the room that sends
through them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handling:
    # (text, config) -> "opted_out" / "opted_in" / None; pure, so the ingest knows it
    # before the message's events are written
    keyword_of: Callable[[str | None, Any], str | None]
    # (session, message, *, now, config, says) -> "opted_out" / "opted_in" / None: a
    # stored text acted on (consent recorded, the confirmation queued)
    customer_text: Callable[..., str | None]
    # (session, contact, value, *, detail, at, now) -> whether the consent changed
    marketing_preference: Callable[..., bool]


_installed: list[Handling] = []
_warned: list[bool] = []


def install(handling: Handling) -> None:
    """Idempotent: the last one installed is the one used."""
    _installed[:] = [handling]


def _handling() -> Handling | None:
    if not _installed and not _warned:
        _warned.append(True)  # a process that never installed it would ignore STOP: say so once
        log.warning("no consent handling installed for customer keywords (hub.wiring.install_reactions was not called)")
    return _installed[0] if _installed else None


def keyword_of(text: str | None, config: Any) -> str | None:
    """What a customer text asks for: "opted_out", "opted_in" or None."""
    handling = _handling()
    return handling.keyword_of(text, config) if handling else None


def customer_text(session: Session, message: Any, *, now: datetime, config: Any, says: Any = ...) -> str | None:
    """Act on a stored inbound text if it is a keyword. `says`: keyword_of(message.text),
    when the caller has it already."""
    handling = _handling()
    return handling.customer_text(session, message, now=now, config=config, says=says) if handling else None


def marketing_preference(session: Session, contact: Any, value: str, *, detail: str, at: datetime,
                         now: datetime) -> bool:
    """A channel's marketing-preference webhook (value "stop", "resume" or "signup");
    returns whether the contact's consent changed."""
    handling = _handling()
    return handling.marketing_preference(session, contact, value, detail=detail, at=at, now=now) if handling else False
