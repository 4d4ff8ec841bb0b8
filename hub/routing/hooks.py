"""Where routing joins the rest of the hub: a conversation started by a customer's
message, a human reply (first responder), a chat closed, the periodic sweep.

Ingest, sending and the conversation actions reach these through
hub.conversations.reactions (installed by hub.wiring); with no routing rule configured a
started conversation costs nothing (hub.routing.known remembers the rules).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Conversation, Message, QueueEntry
from hub.routing import sla
from hub.routing.engine import claim_on_reply, drain, expire_presence, load_for_routing, on_closed, route
from hub.routing.known import rules_exist

log = logging.getLogger(__name__)


def conversation_started(session: Session, conversation_id: int, *, first_text: str, now: datetime) -> None:
    """Route a conversation a customer's message has just opened (in ingest's
    transaction: the assignment or the queue entry is stored with the message)."""
    if not rules_exist(session):
        return
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
    claim_on_reply(session, conversation_id, author_id, now=now)


def conversation_closed(session: Session, conversation: Conversation, *, now: datetime) -> None:
    on_closed(session, conversation, now=now)


def sweep(session: Session, *, now: datetime, presence_timeout: timedelta) -> dict[str, int]:
    """The periodic pass: stale presence goes offline, waiting chats are handed to
    whoever can take them now (a team opened, a sticky wait ended), then the SLA clocks
    due are announced."""
    offline = expire_presence(session, now=now, timeout=presence_timeout)
    session.flush()
    assigned = drain(session, now=now)
    announced = sla.check(session, now=now)
    return {"offline": offline, "assigned": assigned, "sla_warnings": announced["warning"],
            "sla_breaches": announced["breached"]}
