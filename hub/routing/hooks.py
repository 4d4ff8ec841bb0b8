"""Where routing joins the rest of the hub: a conversation started by a customer's
message, a human reply (first responder), a chat closed, the periodic sweep.

Ingest calls conversation_started() for every new conversation; with no routing rule
configured that must cost nothing, and with rules it must be quick: the enabled rules
and the teams' hours and strategies are remembered for RULES_TTL seconds (saving them
in this process forgets them at once; other processes see a change within the TTL).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Conversation, Message, QueueEntry, RoutingRule, Team

log = logging.getLogger(__name__)

RULES_TTL = 5.0
_lock = threading.Lock()
_known: dict[str, tuple[float, "Snapshot"]] = {}  # database URL -> (read at, snapshot)


@dataclass(frozen=True)
class RuleView:
    id: int
    conditions: dict[str, Any]
    team_id: int | None
    user_id: int | None


@dataclass(frozen=True)
class TeamView:
    """What routing reads of a team on every conversation (its writable state, the
    round-robin turn, stays in the database)."""

    id: int
    strategy: str
    time_zone: str
    hours: dict[str, Any]
    holidays: tuple[str, ...]
    channel_ids: tuple[int, ...]

    def serves(self, channel_id: int) -> bool:
        return not self.channel_ids or channel_id in self.channel_ids


@dataclass(frozen=True)
class Snapshot:
    rules: tuple[RuleView, ...]  # enabled, in the order they are tried
    teams: dict[int, TeamView]


def _key(session: Session) -> str:
    return str(session.get_bind().url)


def forget(session: Session | None = None) -> None:
    """Rules or teams changed: read them again on the next conversation."""
    with _lock:
        if session is None:
            _known.clear()
        else:
            _known.pop(_key(session), None)


def snapshot(session: Session, *, clock=time.monotonic) -> Snapshot:
    """The enabled rules and the teams, read at most every RULES_TTL seconds."""
    key = _key(session)
    now = clock()
    with _lock:
        cached = _known.get(key)
    if cached is not None and now - cached[0] < RULES_TTL:
        return cached[1]
    rules = tuple(RuleView(r.id, dict(r.conditions or {}), r.team_id, r.user_id) for r in session.execute(
        select(RoutingRule.id, RoutingRule.conditions, RoutingRule.team_id, RoutingRule.user_id)
        .where(RoutingRule.enabled.is_(True)).order_by(RoutingRule.position, RoutingRule.id)))
    teams = {}
    if rules:
        teams = {t.id: TeamView(t.id, t.strategy, t.time_zone, dict(t.hours or {}), tuple(t.holidays or ()),
                                tuple(t.channel_ids or ())) for t in session.execute(
            select(Team.id, Team.strategy, Team.time_zone, Team.hours, Team.holidays, Team.channel_ids))}
    found = Snapshot(rules, teams)
    with _lock:
        _known[key] = (now, found)
    return found


def rules_exist(session: Session, *, clock=time.monotonic) -> bool:
    return bool(snapshot(session, clock=clock).rules)


def conversation_started(session: Session, conversation_id: int, *, first_text: str, now: datetime) -> None:
    """Route a conversation a customer's message has just opened (in ingest's
    transaction: the assignment or the queue entry is stored with the message)."""
    if not rules_exist(session):
        return
    from hub.routing.engine import load_for_routing, route

    conversation = load_for_routing(session, conversation_id)
    if conversation is None:
        return
    try:
        with session.begin_nested():
            route(session, conversation, now=now, first_text=first_text or "")
    except Exception:  # the message is stored all the same; the chat waits for a person
        log.exception("routing conversation %s failed; it stays unassigned", conversation_id)


def conversation_released(session: Session, conversation: Conversation, *, now: datetime) -> None:
    """An operator let go of a chat (unassigned it): route it again, by the rules, as if
    it had just started (its first customer message is what keyword rules read)."""
    if conversation.status != "open" or conversation.assignee_id is not None or not rules_exist(session):
        return
    from hub.routing.engine import route

    first_text = session.scalar(select(Message.text).where(
        Message.conversation_id == conversation.id, Message.direction == "in")
        .order_by(Message.sent_at, Message.id).limit(1)) or ""
    route(session, conversation, now=now, first_text=first_text)


def human_reply(session: Session, conversation_id: int | None, author_id: int | None, *, now: datetime) -> None:
    """An operator answered: a conversation offered to their team becomes theirs."""
    if conversation_id is None or author_id is None:
        return
    if session.get(QueueEntry, conversation_id) is None:
        return
    from hub.routing.engine import claim_on_reply

    claim_on_reply(session, conversation_id, author_id, now=now)


def conversation_closed(session: Session, conversation: Conversation, *, now: datetime) -> None:
    from hub.routing.engine import on_closed

    on_closed(session, conversation, now=now)


def sweep(session: Session, *, now: datetime, presence_timeout: timedelta) -> dict[str, int]:
    """The periodic pass: stale presence goes offline, waiting chats are handed to
    whoever can take them now (a team opened, a sticky wait ended), then the SLA clocks
    due are announced."""
    from hub.routing import sla
    from hub.routing.engine import drain, expire_presence

    offline = expire_presence(session, now=now, timeout=presence_timeout)
    session.flush()
    assigned = drain(session, now=now)
    announced = sla.check(session, now=now)
    return {"offline": offline, "assigned": assigned, "sla_warnings": announced["warning"],
            "sla_breaches": announced["breached"]}
