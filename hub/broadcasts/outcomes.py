"""Recipients' outcomes, read from their messages (whose statuses the WhatsApp webhooks
keep): sent, delivered, read, replied (the person wrote after it), failed with Meta's
code. Each outcome reached is written once and emitted once as broadcast.recipient."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.broadcasts.meta_errors import explain
from hub.events.outbox import emit
from hub.models import Broadcast, BroadcastRecipient, Contact, Conversation, Message

RANK = {"pending": 0, "queued": 1, "sent": 2, "delivered": 3, "read": 4, "replied": 5}
FROM_MESSAGE = {"accepted": "sent", "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
OPEN = ("queued", "sent", "delivered", "read")


def outcome_of(message_status: str, accepted_at: datetime | None, last_inbound_at: datetime | None) -> str | None:
    """The recipient's status for its message's, None while it waits to be sent."""
    status = FROM_MESSAGE.get(message_status)
    if status is None:
        return None
    if status != "failed" and accepted_at is not None and last_inbound_at is not None \
            and last_inbound_at > accepted_at:
        return "replied"
    return status


def moves(current: str, new: str | None) -> bool:
    if new is None or new == current or current in ("failed", "skipped", "replied"):
        return False
    return new == "failed" or RANK.get(new, 0) > RANK.get(current, 0)


def sync(session: Session, broadcast: Broadcast, *, now: datetime, limit: int = 2000) -> int:
    """Move recipients whose message or conversation changed since they were last written."""
    r, m, c = BroadcastRecipient, Message, Conversation
    rows = session.execute(
        select(r.id, r.status, r.phone, r.contact_id, r.message_id, m.status.label("message_status"),
               m.accepted_at, m.error_code, m.error_title, m.conversation_id, c.last_inbound_at)
        .join(m, m.id == r.message_id).join(c, c.id == m.conversation_id)
        .where(r.broadcast_id == broadcast.id, r.status.in_(OPEN),
               or_(r.message_status.is_(None), m.status != r.message_status,
                   c.last_inbound_at > m.accepted_at))
        .order_by(r.id).limit(limit)).all()
    # The rows' conversations and contacts in two statements, plain status moves in one
    # UPDATE per status: a statement per recipient was a good part of the pump's time.
    # (held in `loaded` while emitting: the identity map keeps unchanged objects only as long as someone does)
    loaded: list[Any] = []
    if rows:
        loaded = list(session.scalars(select(c).where(c.id.in_({row.conversation_id for row in rows}))))
        loaded += session.scalars(select(Contact).where(Contact.id.in_({v.contact_id for v in loaded}))).all()
    plain: dict[tuple[str | None, str], list[int]] = {}
    moved = 0
    for row in rows:
        new = outcome_of(row.message_status, row.accepted_at, row.last_inbound_at)
        if not moves(row.status, new):
            plain.setdefault((None, row.message_status), []).append(row.id)
            continue
        if new == "failed":
            session.execute(update(r).where(r.id == row.id).values(
                status=new, message_status=row.message_status, updated_at=now, error_code=row.error_code,
                reason=explain(row.error_code, row.error_title)).execution_options(synchronize_session=False))
        else:
            plain.setdefault((new, row.message_status), []).append(row.id)
        _emit(session, broadcast, row, new, now=now)
        moved += 1
    for (new, message_status), ids in plain.items():
        values: dict[str, Any] = {"message_status": message_status}
        if new is not None:
            values.update(status=new, updated_at=now)
        for start in range(0, len(ids), 500):
            session.execute(update(r).where(r.id.in_(ids[start:start + 500])).values(**values)
                            .execution_options(synchronize_session=False))
    del loaded
    return moved


def _emit(session: Session, broadcast: Broadcast, row: Any, status: str, *, now: datetime) -> None:
    conversation = session.get(Conversation, row.conversation_id)
    contact = session.get(Contact, conversation.contact_id)
    error = None
    if status == "failed":
        error = {"code": row.error_code, "title": row.error_title, "explanation": explain(row.error_code,
                                                                                          row.error_title)}
    emit(session, "broadcast.recipient", {
        "broadcast": {"id": broadcast.id, "name": broadcast.name, "template": broadcast.template_name,
                      "language": broadcast.template_language, "category": broadcast.subscription},
        "recipient": {"id": row.id, "phone": row.phone, "status": status,
                      "reason": error["explanation"] if error else None, "error": error,
                      "message_id": row.message_id},
        "conversation": payloads.conversation(session, conversation),
        "contact": payloads.contact(contact),
    }, now=now, ordering_key=payloads.ordering_key(conversation))
