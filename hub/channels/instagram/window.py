"""Instagram's two messaging windows, as pure functions of the customer's last message
and an explicit `now` (Meta's Messenger Platform policy for Instagram):

- standard: any message, automated or not, within 24 hours of the customer's last
  message, sent with messaging_type RESPONSE;
- human agent: a person's reply (not a bot's or an automation's) within 7 days,
  sent with messaging_type MESSAGE_TAG and tag HUMAN_AGENT;
- after that nothing may be sent until the customer writes again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.channels.window import HasWindow, aware

STANDARD = timedelta(hours=24)
HUMAN_AGENT = timedelta(days=7)


@dataclass(frozen=True)
class Allowed:
    """How a message may go: {"messaging_type": ...} (and "tag") for the Send API."""

    messaging_type: str
    tag: str | None = None

    def fields(self) -> dict[str, str]:
        return {"messaging_type": self.messaging_type, **({"tag": self.tag} if self.tag else {})}


def standard_closes_at(conversation: HasWindow) -> datetime | None:
    last = conversation.last_inbound_at
    return None if last is None else aware(last, "last_inbound_at") + STANDARD


def human_agent_closes_at(conversation: HasWindow) -> datetime | None:
    last = conversation.last_inbound_at
    return None if last is None else aware(last, "last_inbound_at") + HUMAN_AGENT


def allowed(conversation: HasWindow, now: datetime, *, human: bool) -> Allowed | None:
    """How a message sent at `now` may go; None when it may not go at all. `human`: an
    operator wrote it (only people may use the HUMAN_AGENT tag)."""
    standard = standard_closes_at(conversation)
    if standard is None:
        return None
    now = aware(now, "now")
    if now < standard:
        return Allowed("RESPONSE")
    if human and now < human_agent_closes_at(conversation):
        return Allowed("MESSAGE_TAG", "HUMAN_AGENT")
    return None
