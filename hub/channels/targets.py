"""Where an outgoing message goes on a channel whose customers must write first
(Telegram, Instagram): the conversation given, or the contact known by its key on the
channel given; writing to a closed conversation reopens the contact's one."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channels.base import NotFound, Outgoing, SendRefused
from hub.conversations.store import open_conversation
from hub.models import Channel, Contact, Conversation


def resolve(session: Session, outgoing: Outgoing, now: datetime, *, prefix: str,
            never_wrote: Callable[[str], str]) -> tuple[Channel, Contact, Conversation, bool]:
    """(channel, contact, conversation, started). `to` names the contact by its key
    without `prefix` ("tg:", "ig:"); `never_wrote(id)` says why an unknown one is 404."""
    if outgoing.conversation_id is not None:
        conversation = session.get(Conversation, outgoing.conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation with id {outgoing.conversation_id}")
        channel = session.get(Channel, conversation.channel_id)
        contact = session.get(Contact, conversation.contact_id)
        if conversation.status == "open":
            return channel, contact, conversation, False
    else:
        if outgoing.channel_id is None or not outgoing.to:
            raise SendRefused("give conversation_id, or channel_id and to")
        channel = session.get(Channel, outgoing.channel_id)
        if channel is None:
            raise NotFound(f"no channel with id {outgoing.channel_id}")
        user_id = outgoing.to.removeprefix(prefix).strip()
        contact = session.scalar(select(Contact).where(Contact.user_id == f"{prefix}{user_id}"))
        if contact is None:
            raise NotFound(never_wrote(user_id))
    conversation, started = open_conversation(session, channel_id=channel.id, contact_id=contact.id, now=now)
    return channel, contact, conversation, started
