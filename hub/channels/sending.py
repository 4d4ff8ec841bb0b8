"""Queue a message on whatever channel its conversation (or the given channel) is on:
the one way the inbox, the REST API and CRM commands send."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.conversations import reactions as conversation_reactions
from hub.channels import registry
from hub.channels.base import ChannelKind, Outgoing
from hub.models import Channel, Conversation, Message


def kind_for(session: Session, outgoing: Outgoing, config: Any = None) -> ChannelKind:
    """The kind of the channel the message goes out on (the default kind when the
    conversation or channel does not exist: its queue() refuses with NotFound)."""
    channel = None
    if outgoing.conversation_id is not None:
        conversation = session.get(Conversation, outgoing.conversation_id)
        channel = session.get(Channel, conversation.channel_id) if conversation is not None else None
    elif outgoing.channel_id is not None:
        channel = session.get(Channel, outgoing.channel_id)
    return registry.of(channel, config)


def queue(session: Session, outgoing: Outgoing, *, now: datetime, config: Any = None) -> Message:
    """Queue `outgoing` in the caller's transaction (raises hub.channels.base.SendRefused).
    A person's message reaches the rooms that react to it (hub.conversations.reactions):
    a chat offered to their team (first responder) becomes theirs, a scenario running
    there is paused."""
    message = kind_for(session, outgoing, config).queue(session, outgoing, now=now)
    if outgoing.author_id is not None:
        conversation_reactions.operator_replied(session, message.conversation_id, outgoing.author_id, now=now)
    return message
