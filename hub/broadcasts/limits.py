"""WhatsApp's messaging limit: how many unique people a business portfolio may reach
with business-initiated (template) messages in a rolling 24 hours, shared by all its
numbers. The hub is one portfolio (as its emulator is): every WhatsApp channel counts.

A tier the number has not reported yet is taken as TIER_250, the smallest Meta gives a
verified business: a broadcast never runs past what might be the limit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from hub.models import Channel, Conversation, Message

ASSUMED_TIER = "TIER_250"
_TIER = re.compile(r"^TIER_(\d+)(K?)$")


def tier_limit(tier: str | None) -> int | None:
    """TIER_250 -> 250, TIER_2K -> 2000, TIER_UNLIMITED -> None (no limit)."""
    if tier == "TIER_UNLIMITED":
        return None
    match = _TIER.match(tier or ASSUMED_TIER) or _TIER.match(ASSUMED_TIER)
    return int(match.group(1)) * (1000 if match.group(2) else 1)


@dataclass(frozen=True)
class Room:
    tier: str
    assumed: bool  # no channel has reported its tier
    limit: int | None
    used: int  # unique people reached with templates in the last 24 h

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def portfolio_tier(session: Session) -> tuple[str, bool]:
    tiers = [t for t in session.scalars(select(Channel.messaging_limit).where(Channel.kind == "whatsapp")) if t]
    if not tiers:
        return ASSUMED_TIER, True
    if "TIER_UNLIMITED" in tiers:
        return "TIER_UNLIMITED", False
    return max(tiers, key=lambda t: tier_limit(t) or 0), False


def _recent(now: datetime):
    return (select(Message.recipient)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Channel, Channel.id == Conversation.channel_id)
            .where(Channel.kind == "whatsapp", Message.direction == "out", Message.type == "template",
                   Message.sent_at > now - timedelta(hours=24), Message.status != "failed"))


def room(session: Session, *, now: datetime, count_unlimited: bool = True) -> Room:
    """count_unlimited=False: no count when there is no limit (`used` is then 0)."""
    tier, assumed = portfolio_tier(session)
    used = 0
    if count_unlimited or tier_limit(tier) is not None:
        used = session.scalar(select(func.count(distinct(_recent(now).subquery().c.recipient)))) or 0
    return Room(tier=tier, assumed=assumed, limit=tier_limit(tier), used=used)


def reached_recently(session: Session, phones: list[str], *, now: datetime) -> set[str]:
    """Which of these (E.164) were sent a template in the last 24 h: they use no new room."""
    out: set[str] = set()
    for start in range(0, len(phones), 500):
        chunk = phones[start:start + 500]
        out.update(session.scalars(_recent(now).where(Message.recipient.in_(chunk)).distinct()))
    return out
