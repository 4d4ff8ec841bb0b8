"""SLA clocks per team: first response, next response, resolution.

A clock counts business seconds only (the team's hours and holidays) and only while
the customer is waiting for a person: from a customer message that no human reply has
answered yet until the next human-authored outbound message. Bot and automated
messages (no author) answer nothing. So:

- first response: the first waiting period of the conversation;
- next response: each later waiting period (a customer writing again after a reply);
- resolution: all waiting periods together, from the first message to the close
  (paused while the ball is in the customer's court).

The sweep announces each clock once per level: `sla.warning` when `warn_before_seconds`
remain, `sla.breached` at the target; a breach may hand the chat to another operator
of the team (`reassign_on_breach`) and names the team's `supervisor_id` to notify.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.events.outbox import emit
from hub.models import Contact, Conversation, Message, SlaMark, Team, User
from hub.routing import hours

log = logging.getLogger(__name__)

TARGETS = ("first_response", "next_response", "resolution")
KEYS = {"first_response_seconds", "next_response_seconds", "resolution_seconds", "warn_before_seconds",
        "reassign_on_breach", "supervisor_id"}
MAX_SECONDS = 366 * 86400


class SlaError(ValueError):
    """A policy that cannot be used; the message names the key."""


def validate(policy: Any) -> dict[str, Any]:
    if not isinstance(policy, dict):
        raise SlaError("sla: expected an object")
    unknown = set(policy) - KEYS
    if unknown:
        raise SlaError(f"sla: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})")
    for key in KEYS - {"reassign_on_breach", "supervisor_id"}:
        value = policy.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SECONDS:
            raise SlaError(f"sla.{key}: expected whole seconds from 1 to {MAX_SECONDS}")
    if not isinstance(policy.get("reassign_on_breach", False), bool):
        raise SlaError("sla.reassign_on_breach: expected true or false")
    supervisor = policy.get("supervisor_id")
    if supervisor is not None and (not isinstance(supervisor, int) or isinstance(supervisor, bool)
                                   or not 0 < supervisor < 2**31):
        raise SlaError("sla.supervisor_id: expected a user id")
    return policy


@dataclass(frozen=True)
class Beat:
    """One message as the clocks see it."""

    at: datetime
    inbound: bool
    human: bool  # an outbound message a person wrote


def waiting_periods(beats: Iterable[Beat], until: datetime) -> list[tuple[datetime, datetime | None]]:
    """(start, end) of each time the customer waited for a person; end None: still waiting."""
    periods: list[tuple[datetime, datetime | None]] = []
    start: datetime | None = None
    for beat in sorted(beats, key=lambda b: b.at):
        if beat.at > until:
            break
        if beat.inbound:
            if start is None:
                start = beat.at
        elif beat.human and start is not None:
            periods.append((start, beat.at))
            start = None
    if start is not None:
        periods.append((start, None))
    return periods


@dataclass(frozen=True)
class Clock:
    target: str
    started_at: datetime  # the waiting period (or the conversation) it belongs to
    elapsed: float  # business seconds
    limit: int


def clocks(policy: dict[str, Any], team_hours: dict, holidays: list[str], time_zone: str, beats: list[Beat],
           now: datetime) -> list[Clock]:
    """The running clocks of a conversation with a policy (pure)."""
    periods = waiting_periods(beats, now)
    if not periods:
        return []

    def business(lo: datetime, hi: datetime | None) -> float:
        return hours.business_seconds(team_hours, holidays, time_zone, lo, hi or now)

    out = []
    last_start, last_end = periods[-1]
    if last_end is None:
        target = "first_response" if len(periods) == 1 else "next_response"
        limit = policy.get(f"{target}_seconds")
        if limit:
            out.append(Clock(target, last_start, business(last_start, None), limit))
    if policy.get("resolution_seconds"):
        total = sum(business(lo, hi) for lo, hi in periods)
        out.append(Clock("resolution", periods[0][0], total, policy["resolution_seconds"]))
    return out


def level(clock: Clock, warn_before: int | None) -> str | None:
    if clock.elapsed >= clock.limit:
        return "breached"
    if warn_before and clock.elapsed >= clock.limit - warn_before:
        return "warning"
    return None


def _beats(session: Session, conversation_ids: list[int]) -> dict[int, list[Beat]]:
    out: dict[int, list[Beat]] = {cid: [] for cid in conversation_ids}
    rows = session.execute(select(Message.conversation_id, Message.sent_at, Message.direction, Message.author_id)
                           .where(Message.conversation_id.in_(conversation_ids),
                                  Message.type.notin_(("read", "reaction")))
                           .order_by(Message.conversation_id, Message.sent_at, Message.id))
    for cid, at, direction, author in rows:
        out[cid].append(Beat(at=at, inbound=direction == "in", human=direction == "out" and author is not None))
    return out


def check(session: Session, *, now: datetime, batch: int = 500) -> dict[str, int]:
    """Announce the warnings and breaches due now (each once). Returns counts."""
    counts = {"warning": 0, "breached": 0}
    teams = [t for t in session.scalars(select(Team)) if t.sla]
    for team in teams:
        policy = team.sla
        last_id = 0
        while True:
            ids = list(session.scalars(select(Conversation.id).where(
                Conversation.team_id == team.id, Conversation.status == "open", Conversation.id > last_id)
                .order_by(Conversation.id).limit(batch)))
            if not ids:
                break
            last_id = ids[-1]
            beats = _beats(session, ids)
            marks = {(m.conversation_id, m.target, payloads.iso(m.started_at), m.level) for m in session.scalars(
                select(SlaMark).where(SlaMark.conversation_id.in_(ids)))}
            for cid in ids:
                for clock in clocks(policy, team.hours or {}, team.holidays or [], team.time_zone, beats[cid], now):
                    reached = level(clock, policy.get("warn_before_seconds"))
                    if reached is None:
                        continue
                    # A breach found without its warning (a sweep later than the warning
                    # window) is announced as the breach alone.
                    if (cid, clock.target, payloads.iso(clock.started_at), reached) in marks:
                        continue
                    _announce(session, team, session.get(Conversation, cid), clock, reached, now=now)
                    counts[reached] += 1
    return counts


def _announce(session: Session, team: Team, conversation: Conversation, clock: Clock, lvl: str, *,
              now: datetime) -> None:
    session.add(SlaMark(conversation_id=conversation.id, target=clock.target, started_at=clock.started_at,
                        level=lvl, at=now))
    session.flush()
    policy = team.sla or {}
    assignee = session.get(User, conversation.assignee_id) if conversation.assignee_id else None
    supervisor = session.get(User, policy["supervisor_id"]) if policy.get("supervisor_id") else None
    reassigned_to = None
    if lvl == "breached" and policy.get("reassign_on_breach") and clock.target != "resolution":
        from hub.routing.engine import reassign_away

        reassigned_to = reassign_away(session, conversation, team, now=now)
    emit(session, f"sla.{'warning' if lvl == 'warning' else 'breached'}", {
        "conversation": payloads.conversation(session, conversation),
        "contact": payloads.contact(session.get(Contact, conversation.contact_id)),
        "team": {"id": team.id, "name": team.name},
        "target": clock.target, "clock_started_at": payloads.iso(clock.started_at),
        "elapsed_seconds": round(clock.elapsed), "target_seconds": clock.limit,
        "assignee": payloads.user(assignee), "supervisor": payloads.user(supervisor),
        "reassigned_to": payloads.user(session.get(User, reassigned_to)) if reassigned_to else None,
    }, now=now, ordering_key=payloads.ordering_key(conversation))
