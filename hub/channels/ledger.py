"""The outbound ledger's bookkeeping that every channel's sender shares: which channels
of a kind to serve, the claim of waiting messages, whether a claimed message is still
this worker's, and what a sent or failed attempt writes (the message row, the
conversation, message.sent / message.status). Each sender keeps what is its channel's
own: the call, the verdict on an error, and what a final failure marks (the contact,
the channel).

Claims follow the delivery ledger's pattern: per channel (serialised on the channel row
on PostgreSQL), only the oldest waiting message of each conversation, leased so a
killed worker's messages go to another worker once the lease lapses."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from hub.events import payloads
from hub.shared.backoff import next_attempt_at
from hub.events.outbox import emit
from hub.models import Channel, Contact, Conversation, Message
from hub.platform.ratelimit import TokenBucket

WAITING = ("queued", "sending")


@dataclass(frozen=True)
class Claimed:
    """A message this worker holds the lease of: its request body, tries so far, age."""

    message_id: int
    body: dict
    attempts: int
    created_at: datetime


def _due(m, now: datetime):
    return or_(and_(m.status == "queued", m.next_attempt_at <= now),
               and_(m.status == "sending", m.lease_expires_at <= now))


def _blocking(m, now: datetime):
    return or_(and_(m.status == "queued", m.next_attempt_at > now),
               and_(m.status == "sending", m.lease_expires_at > now))


def claim(session: Session, channel_id: int, owner: str, *, now: datetime, limit: int,
          lease_seconds: float) -> list[Claimed]:
    """Lease up to `limit` due messages of the channel, the oldest waiting one of each
    conversation only, in the caller's transaction."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(select(Channel.id).where(Channel.id == channel_id).with_for_update())
    m, e = Message, aliased(Message)
    blocked = (
        select(e.conversation_id, func.min(e.id).label("first_id"))
        .join(Conversation, Conversation.id == e.conversation_id)
        .where(Conversation.channel_id == channel_id, e.direction == "out", e.status.in_(WAITING),
               _blocking(e, now))
        .group_by(e.conversation_id)
        .cte("blocked")
    )
    query = (
        select(m.id, m.request, m.attempts, m.created_at, m.conversation_id)
        .join(Conversation, Conversation.id == m.conversation_id)
        .outerjoin(blocked, blocked.c.conversation_id == m.conversation_id)
        .where(Conversation.channel_id == channel_id, m.direction == "out", m.status.in_(WAITING),
               _due(m, now), or_(blocked.c.first_id.is_(None), m.id < blocked.c.first_id))
        .order_by(m.id)
        .limit(limit * 4)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True, of=m)
    chosen: list[Claimed] = []
    seen_conversations: set[int] = set()
    for row in session.execute(query):
        if row.conversation_id in seen_conversations:
            continue  # one message per conversation per round keeps their order
        seen_conversations.add(row.conversation_id)
        chosen.append(Claimed(row.id, row.request, row.attempts, row.created_at))
        if len(chosen) == limit:
            break
    if chosen:
        session.execute(
            update(Message).where(Message.id.in_([c.message_id for c in chosen]))
            .values(status="sending", lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
    return chosen


def healthy_channels(db: Any, kind: str) -> list[Channel]:
    """The channels of `kind` a sender may send on (detached rows)."""
    with db.scope() as session:
        channels = list(session.scalars(select(Channel).where(Channel.kind == kind, Channel.health != "unhealthy")
                                        .order_by(Channel.id)))
        for channel in channels:
            session.expunge(channel)
    return channels


def owned(session: Session, item: Claimed, owner: str) -> Message | None:
    """The claimed message, unless our lease lapsed and another worker took it."""
    message = session.get(Message, item.message_id)
    if message is None or message.lease_owner != owner or message.status != "sending":
        return None
    return message


def record_sent(session: Session, message: Message, item: Claimed, *, key: str | None, now: datetime) -> None:
    """The channel accepted the message (`key`: its id there): sent, and message.sent."""
    message.wa_message_id = key
    message.status = "sent"
    message.accepted_at = now
    message.attempts = item.attempts + 1
    message.lease_owner = message.lease_expires_at = None
    message.error_code = message.error_title = None
    message.updated_at = now
    conversation = session.get(Conversation, message.conversation_id)
    conversation.last_message_at = now
    session.flush()
    emit(session, "message.sent", {
        "conversation": payloads.conversation(session, conversation),
        "contact": payloads.contact(session.get(Contact, conversation.contact_id)),
        "message": payloads.message(session, message),
    }, now=now, ordering_key=payloads.ordering_key(conversation))


def record_failure(session: Session, message: Message, item: Claimed, *, code: int | None, title: str,
                   transient: str | None, wait: timedelta | None, config: Any, now: datetime,
                   rng: random.Random | None = None) -> Conversation | None:
    """An attempt failed. `transient` "throttled" (tried again after `wait`) or "retry"
    (after backoff) keeps it queued unless it is older than delivery.max_age_seconds;
    otherwise it fails for good, with message.status, and its conversation is returned
    for the sender to mark what the failure means."""
    message.attempts = item.attempts + 1
    message.lease_owner = message.lease_expires_at = None
    message.error_code, message.error_title = code, title[:2000]
    message.updated_at = now
    too_old = now - item.created_at > timedelta(seconds=config.delivery.max_age_seconds)
    if transient in ("throttled", "retry") and not too_old:
        message.status = "queued"
        if transient == "throttled" and wait is not None:
            message.next_attempt_at = now + wait
        else:
            message.next_attempt_at = next_attempt_at(now, message.attempts, base=config.delivery.backoff_base_seconds,
                                                      cap=config.delivery.backoff_max_seconds, rng=rng)
        return None
    message.status = "failed"
    message.failed_at = now
    conversation = session.get(Conversation, message.conversation_id)
    emit(session, "message.status", {
        "conversation_id": conversation.id, "contact_id": conversation.contact_id,
        "message": {"id": message.id, "wa_message_id": message.wa_message_id, "status": "failed",
                    "error": {"code": code, "title": message.error_title, "details": None}, "pricing": None},
    }, now=now, ordering_key=payloads.ordering_key(conversation))
    return conversation


def send_round(runtime: Any, owner: str, clock: Callable[[], datetime], *, kind: str, batch: int,
               client_for: Callable[[Channel], Any], send: Callable[[Any, Channel, Claimed], Any],
               error: type[Exception], sent: Callable[..., None], failed: Callable[..., None]) -> int:
    """One round over every healthy channel of `kind`: claim up to `batch` messages
    (one per conversation), send each under the channel's rate with `send(client,
    channel, item)`, and record it with `sent(session, channel, message, item, result)`
    or `failed(session, channel, message, item, exc)` (an `error` raised) in its own
    transaction, unless the lease lapsed meanwhile. How many were claimed."""
    total = 0
    for channel in healthy_channels(runtime.db, kind):
        with runtime.db.scope() as session:
            claimed = claim(session, channel.id, owner, now=clock(), limit=batch,
                            lease_seconds=runtime.config.worker.lease_seconds)
        if not claimed:
            continue
        total += len(claimed)
        client = client_for(channel)
        bucket = TokenBucket(runtime.db, f"channel:{channel.id}:mps", rate=channel.mps, burst=max(1, channel.mps),
                             clock=clock)
        for item in claimed:
            bucket.take()
            result, problem = None, None
            try:
                result = send(client, channel, item)
            except error as exc:
                problem = exc
            with runtime.db.scope() as session:
                message = owned(session, item, owner)
                if message is None:
                    continue
                if problem is None:
                    sent(session, channel, message, item, result)
                else:
                    failed(session, channel, message, item, problem)
    return total
