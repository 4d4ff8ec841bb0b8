"""What people and rules do to a conversation: assign it, close it (with their events)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.conversations import reactions as conversation_reactions
from hub.events import payloads
from hub.events.outbox import emit
from hub.models import Contact, Conversation, QueueEntry, User


def assign(session: Session, conversation: Conversation, assignee_id: int | None, *, now: datetime) -> None:
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        if user is None or not user.active or user.role == "viewer":
            raise LookupError(f"user {assignee_id} cannot take conversations")
    if conversation.assignee_id == assignee_id:
        return
    previous = session.get(User, conversation.assignee_id) if conversation.assignee_id else None
    conversation.assignee_id = assignee_id
    if assignee_id is not None:  # taken by a person: no longer waiting in a routing queue
        waiting = session.get(QueueEntry, conversation.id)
        if waiting is not None:
            session.delete(waiting)
    conversation.updated_at = now
    contact = session.get(Contact, conversation.contact_id)
    emit(session, "conversation.assigned", {
        "conversation": payloads.conversation(session, conversation), "contact": payloads.contact(contact),
        "assignee": payloads.user(session.get(User, assignee_id) if assignee_id else None),
        "previous": payloads.user(previous),
    }, now=now, ordering_key=payloads.ordering_key(conversation))


def close(session: Session, conversation: Conversation, *, reason: str, now: datetime) -> None:
    if conversation.status == "closed":
        return
    conversation.status = "closed"
    conversation.closed_at = now
    conversation.updated_at = now
    contact = session.get(Contact, conversation.contact_id)
    emit(session, "conversation.closed", {
        "conversation": payloads.conversation(session, conversation), "contact": payloads.contact(contact),
        "reason": reason,
    }, now=now, ordering_key=payloads.ordering_key(conversation))
    conversation_reactions.closed(session, conversation, now=now)  # routing frees the place
