"""Recipients of broadcasts leaving them before they are sent (opt-out, pause)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from hub.models import Broadcast, BroadcastRecipient, Contact, Message

ACTIVE = ("draft", "scheduled", "sending", "paused")


def unqueue(session: Session, message_ids: list[int]) -> set[int]:
    """Delete those of the messages no sender has claimed yet; returns their ids. On
    PostgreSQL a message a sender is claiming right now is locked, and the DELETE then
    sees it 'sending' and leaves it."""
    if not message_ids:
        return set()
    gone: set[int] = set()
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start:start + 500]
        gone.update(session.scalars(
            delete(Message).where(Message.id.in_(chunk), Message.status == "queued", Message.lease_owner.is_(None),
                                  Message.attempts == 0)
            .returning(Message.id)))
    return gone


def withdraw(session: Session, contact_id: int, subscription: str, *, reason: str, now: datetime) -> int:
    """Skip a contact in every broadcast of `subscription` that has not reached them."""
    contact = session.get(Contact, contact_id)
    phone = f"+{contact.wa_id}" if contact is not None and contact.wa_id else None
    who = BroadcastRecipient.contact_id == contact_id
    if phone:
        who = or_(who, BroadcastRecipient.phone == phone)
    rows = session.execute(
        select(BroadcastRecipient.id, BroadcastRecipient.status, BroadcastRecipient.message_id)
        .join(Broadcast, Broadcast.id == BroadcastRecipient.broadcast_id)
        .where(who, Broadcast.subscription == subscription, Broadcast.status.in_(ACTIVE),
               BroadcastRecipient.status.in_(("pending", "queued")))).all()
    pending = [r.id for r in rows if r.status == "pending"]
    queued = {r.message_id: r.id for r in rows if r.status == "queued" and r.message_id is not None}
    withdrawn = unqueue(session, list(queued))  # the ones a sender holds are going out already
    skipped = pending + [queued[mid] for mid in withdrawn]
    if skipped:
        session.execute(update(BroadcastRecipient).where(BroadcastRecipient.id.in_(skipped))
                        .values(status="skipped", reason=reason, message_id=None, updated_at=now)
                        .execution_options(synchronize_session=False))
    return len(skipped)
