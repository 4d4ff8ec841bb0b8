"""The inbox's routing views: chats queued for the teams I am in (with their place in
line and why they wait), and chats whose SLA response clock is about to run out."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.models import Conversation, Message, QueueEntry, Team, TeamMember
from hub.routing import engine, sla

RESPONSE_TARGETS = ("first_response", "next_response")
SHARE_WHEN_NO_WARNING = 0.2  # without warn_before_seconds: the last fifth of the target


@dataclass(frozen=True)
class Due:
    conversation_id: int
    target: str  # first_response | next_response
    left: float  # business seconds; negative once breached
    limit: int


def my_team_ids(s: Any, user_id: int) -> list[int]:
    return list(s.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def queued_query(team_ids: list[int]) -> Any:
    """Open conversations waiting in one of these teams' queues, first in line first."""
    return (select(Conversation).join(QueueEntry, QueueEntry.conversation_id == Conversation.id)
            .where(QueueEntry.team_id.in_(team_ids), Conversation.status == "open")
            .order_by(QueueEntry.queued_at, QueueEntry.conversation_id))


def queue_info(s: Any, conversation_ids: list[int]) -> dict[int, dict[str, Any]]:
    """{conversation id: position, reason, waiting for whom} of the queued ones."""
    if not conversation_ids:
        return {}
    entries = s.scalars(select(QueueEntry).where(QueueEntry.conversation_id.in_(conversation_ids)))
    return {e.conversation_id: {"position": engine.position(s, e), "reason": e.reason, "user_id": e.user_id,
                                "team_id": e.team_id} for e in entries}


def _beats(s: Any, conversation_ids: list[int]) -> dict[int, list[sla.Beat]]:
    """The messages as the SLA clocks see them (as the sweep reads them)."""
    out: dict[int, list[sla.Beat]] = {cid: [] for cid in conversation_ids}
    rows = s.execute(select(Message.conversation_id, Message.sent_at, Message.direction, Message.author_id)
                     .where(Message.conversation_id.in_(conversation_ids), Message.type.notin_(("read", "reaction")))
                     .order_by(Message.conversation_id, Message.sent_at, Message.id))
    for cid, at, direction, author in rows:
        out[cid].append(sla.Beat(at=at, inbound=direction == "in", human=direction == "out" and author is not None))
    return out


def warn_window(policy: dict[str, Any], limit: int) -> float:
    return policy.get("warn_before_seconds") or limit * SHARE_WHEN_NO_WARNING


def breaching(s: Any, *, now: datetime, channel_id: int | None = None, batch: int = 500) -> list[Due]:
    """Open conversations of teams with an SLA whose first or next response clock has
    less than the warning time left (or is already past it), most urgent first."""
    due: list[Due] = []
    for team in s.scalars(select(Team)):
        policy = team.sla or {}
        if not any(policy.get(f"{t}_seconds") for t in RESPONSE_TARGETS):
            continue
        last_id = 0
        while True:
            q = select(Conversation.id).where(Conversation.team_id == team.id, Conversation.status == "open",
                                              Conversation.id > last_id)
            if channel_id:
                q = q.where(Conversation.channel_id == channel_id)
            ids = list(s.scalars(q.order_by(Conversation.id).limit(batch)))
            if not ids:
                break
            last_id = ids[-1]
            beats = _beats(s, ids)
            for cid in ids:
                for clock in sla.clocks(policy, team.hours or {}, team.holidays or [], team.time_zone, beats[cid], now):
                    if clock.target not in RESPONSE_TARGETS:
                        continue
                    left = clock.limit - clock.elapsed
                    if left < warn_window(policy, clock.limit):
                        due.append(Due(cid, clock.target, left, clock.limit))
    return sorted(due, key=lambda d: (d.left, d.conversation_id))
