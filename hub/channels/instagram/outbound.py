"""Queue a message to an Instagram customer, in the caller's transaction; InstagramSender sends.

What the hub can know before the network is refused here, by name: a kind Instagram
does not carry, text over 1000 characters, more than 13 quick replies, a customer who
never wrote (a business cannot start an Instagram chat), a customer Instagram said is
unavailable, and the windows (window.py): 24 hours for anything, then 7 days for a
person's reply, sent with the HUMAN_AGENT tag; after that a clear 409 window_closed.
The windows run from the customer's last message on this account, whichever of their
conversations it was in (Meta's window is per person, not per hub conversation).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels import targets
from hub.channels.base import Outgoing, SendRefused, Unreachable, WindowClosed
from hub.channels.instagram import compose as ig, window
from hub.events.outbox import emit
from hub.models import Contact, Conversation, Message


@dataclass(frozen=True)
class LastInbound:
    last_inbound_at: datetime | None


def igsid_of(contact: Contact) -> str:
    key = contact.user_id or ""
    if not key.startswith("ig:") or not key[3:].isdigit():
        raise SendRefused(f"contact {contact.id} is not an Instagram user")
    return key[3:]


def last_inbound(session: Session, channel_id: int, contact_id: int) -> LastInbound:
    return LastInbound(session.scalar(select(func.max(Conversation.last_inbound_at)).where(
        Conversation.channel_id == channel_id, Conversation.contact_id == contact_id)))


def refusal(last: LastInbound, now: datetime, *, human: bool) -> WindowClosed:
    """Why nothing may go now, in words an operator can act on."""
    if last.last_inbound_at is None:
        return WindowClosed("the customer has not written on Instagram yet; a business cannot start a chat",
                            templates=[], closes_at=None, human_agent_until=None)
    standard, human_until = window.standard_closes_at(last), window.human_agent_closes_at(last)
    if not human and now < human_until:
        return WindowClosed(f"Instagram's 24-hour window closed at {payloads.iso(standard)}; until "
                            f"{payloads.iso(human_until)} only a person may reply (HUMAN_AGENT tag), not an "
                            f"automation", templates=[], closes_at=payloads.iso(standard),
                            human_agent_until=payloads.iso(human_until))
    return WindowClosed(f"the customer last wrote on Instagram at {payloads.iso(last.last_inbound_at)}: replies "
                        f"go within 24 hours, a person's within 7 days (until {payloads.iso(human_until)}); "
                        f"nothing can be sent until they write again", templates=[],
                        closes_at=payloads.iso(standard), human_agent_until=payloads.iso(human_until))


def queue_message(session: Session, outgoing: Outgoing, *, now: datetime) -> Message:
    channel, contact, conversation, started = targets.resolve(
        session, outgoing, now, prefix="ig:", never_wrote=lambda igsid: (
            f"Instagram user {igsid} has not written to this account; a business cannot start an Instagram chat"))
    if outgoing.kind == "template":
        raise SendRefused("Instagram has no templates: send text, media or quick replies within the window")
    composed = ig.compose(outgoing.kind, outgoing.content or {})
    igsid = igsid_of(contact)
    if contact.unreachable_at is not None:
        who = contact.name or (f"@{contact.username}" if contact.username else f"user {igsid}")
        raise Unreachable(f"Instagram said {who} is not available ({payloads.iso(contact.unreachable_at)}): "
                          f"messages are refused until they write again",
                          reason=contact.unreachable_reason or "unavailable")
    human = outgoing.human
    last = last_inbound(session, channel.id, contact.id)
    allowed = window.allowed(last, now, human=human)
    if allowed is None:
        raise refusal(last, now, human=human)
    message = Message(
        conversation_id=conversation.id, direction="out", type=composed.type, text=composed.text or None,
        payload={"content": outgoing.content or {}, "instagram": allowed.fields()}, status="queued", sent_at=now,
        reply_to=outgoing.reply_to, author_id=outgoing.author_id, recipient=igsid, attempts=0, next_attempt_at=now,
        request=ig.request(composed, recipient=igsid, fields=allowed.fields()), created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    if started:
        emit(session, "conversation.started", {"conversation": payloads.conversation(session, conversation),
                                               "contact": payloads.contact(contact)},
             now=now, ordering_key=payloads.ordering_key(conversation))
    return message
