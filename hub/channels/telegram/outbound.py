"""Queue a message to a Telegram user or group, in the caller's transaction;
TelegramSender sends (to a group: its chat id, the contact's negative key).

What the hub can know before the network is refused here, by name: a kind Telegram
does not carry, text over 4096 characters, a user who blocked the bot (409
unreachable), a user who never wrote to the bot (a bot cannot start a chat). There
is no window: anything may be sent at any time.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels import targets
from hub.channels.base import Outgoing, SendRefused, Unreachable
from hub.channels.telegram import compose as tg
from hub.events.outbox import emit
from hub.models import Contact, Message


def chat_id_of(contact: Contact) -> int:
    key = contact.user_id or ""
    if not key.startswith("tg:") or not key[3:].lstrip("-").isdigit():
        raise SendRefused(f"contact {contact.id} is not a Telegram user")
    return int(key[3:])


def queue_message(session: Session, outgoing: Outgoing, *, now: datetime) -> Message:
    channel, contact, conversation, started = targets.resolve(
        session, outgoing, now, prefix="tg:",
        never_wrote=lambda user_id: f"Telegram user {user_id} has not written to this bot; a bot cannot start a chat")
    if outgoing.kind == "template":
        raise SendRefused("Telegram has no templates: send text or media (there is no window to wait for)")
    composed = tg.compose(outgoing.kind, outgoing.content or {})
    chat_id = chat_id_of(contact)
    if contact.unreachable_at is not None and chat_id < 0:
        raise Unreachable(f"the bot {channel.display_number or channel.name} was removed from the Telegram group "
                          f"{contact.name or chat_id} ({payloads.iso(contact.unreachable_at)}): it can write there "
                          f"again once someone adds it back", reason=contact.unreachable_reason or "removed")
    if contact.unreachable_at is not None:
        who = contact.name or (f"@{contact.username}" if contact.username else f"user {chat_id}")
        raise Unreachable(f"{who} blocked the bot {channel.display_number or channel.name} on Telegram "
                          f"({payloads.iso(contact.unreachable_at)}): Telegram refuses messages until they unblock "
                          f"it or write again", reason=contact.unreachable_reason or "blocked")
    reply_to_id = None
    if outgoing.reply_to:
        reply_to_id = tg.message_id_of(outgoing.reply_to)
        if reply_to_id is None or not outgoing.reply_to.startswith(f"tg:{channel.id}:{chat_id}:"):
            raise SendRefused(f"reply_to {outgoing.reply_to!r} is not a message of this Telegram chat")
    message = Message(
        conversation_id=conversation.id, direction="out", type=composed.type, text=composed.text or None,
        payload={"content": outgoing.content or {}}, status="queued", sent_at=now, reply_to=outgoing.reply_to,
        author_id=outgoing.author_id, recipient=str(chat_id), attempts=0, next_attempt_at=now,
        request=tg.request(composed, chat_id=chat_id, reply_to_message_id=reply_to_id),
        created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    if started:
        emit(session, "conversation.started", {"conversation": payloads.conversation(session, conversation),
                                               "contact": payloads.contact(contact)},
             now=now, ordering_key=payloads.ordering_key(conversation))
    return message
