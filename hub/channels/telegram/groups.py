"""A Telegram group's service messages, in the caller's transaction: members joining and
leaving and a new title become system messages on the group's open conversation (the
operator and the CRM timeline see who came and went); a new title renames the group's
contact; a group that became a supergroup gets a new chat id, and its contact is
re-keyed so that the conversation, and replies, follow it.

A group the hub has no conversation with yet (the bot was just added) gets nothing
but the raw webhook: the conversation starts with the first message someone writes.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.channels.first_message import emit_stored
from hub.channels.telegram.compose import message_key
from hub.channels.telegram.types import GroupEvent, TelegramUser, chat_key
from hub.conversations.store import find_contact_row, update_contact
from hub.models import Conversation, Message

log = logging.getLogger(__name__)


def _who(user: TelegramUser) -> str:
    return user.name or (f"@{user.username}" if user.username else f"user {user.id}")


def describe(event: GroupEvent) -> str | None:
    """The system message's text, or None for an event the thread need not show."""
    names = ", ".join(_who(m) for m in event.members)
    if event.kind == "joined":
        if event.actor is not None and all(m.id != event.actor.id for m in event.members):
            return f"{_who(event.actor)} added {names} to the group"
        return f"{names} joined the group"
    if event.kind == "left":
        if event.actor is not None and all(m.id != event.actor.id for m in event.members):
            return f"{_who(event.actor)} removed {names} from the group"
        return f"{names} left the group"
    if event.kind == "title":
        return f"The group was renamed to \u201c{event.title}\u201d"
    return None


def group_event(session: Any, channel: Any, event: GroupEvent, now: datetime, *, media_link: Any = None) -> None:
    if event.kind == "migrated":
        migrate(session, event.old_chat_id, event.new_chat_id, now=now)
        return
    contact = find_contact_row(session, wa_id=None, user_id=chat_key(event.chat_id))
    if contact is None:
        log.info("telegram group %s has no conversation yet; its %s is kept in the raw webhook",
                 event.chat_id, event.kind)
        return
    if event.kind == "title" and event.title and contact.name != event.title:
        update_contact(session, contact, {"name": event.title, "updated_at": now})
    text = describe(event)
    conversation = session.scalar(select(Conversation).where(
        Conversation.channel_id == channel.id, Conversation.contact_id == contact.id, Conversation.status == "open"))
    if text is None or conversation is None:
        return
    member = {"id": event.actor.contact_key, "name": event.actor.name, "username": event.actor.username} \
        if event.actor is not None else None
    message = Message(conversation_id=conversation.id, wa_message_id=message_key(channel.id, event.chat_id,
                                                                                 event.message_id),
                      direction="in", type="system", text=text, status="received", sent_at=event.date, attempts=0,
                      payload={"message": event.raw, "member": member, "original_type": event.kind,
                               "telegram": {"chat_id": event.chat_id, "message_id": event.message_id}},
                      created_at=now, updated_at=now)
    session.add(message)
    if conversation.last_message_at is None or event.date > conversation.last_message_at:
        conversation.last_message_at = event.date
    session.flush()
    emit_stored(session, conversation, contact, message, channel=channel, started=False, first_text="", now=now,
                media_link=media_link)


def migrate(session: Any, old_chat_id: int | None, new_chat_id: int | None, *, now: datetime) -> None:
    """The group became a supergroup: its contact takes the new chat id, so its
    conversations stay one thread and replies go to the new chat. Telegram says it twice
    (migrate_to_chat_id in the old group, migrate_from_chat_id in the new one); the
    second finds nothing left to move."""
    if old_chat_id is None or new_chat_id is None or old_chat_id == new_chat_id:
        return
    old = find_contact_row(session, wa_id=None, user_id=chat_key(old_chat_id))
    if old is None:
        return
    new = find_contact_row(session, wa_id=None, user_id=chat_key(new_chat_id))
    if new is None:
        update_contact(session, old, {"user_id": chat_key(new_chat_id), "updated_at": now})
        return
    # The supergroup was written in before the move was told: its conversations join the
    # old group's contact, unless that would make two open ones on a channel.
    open_channels = set(session.scalars(select(Conversation.channel_id).where(
        Conversation.contact_id == old.id, Conversation.status == "open")))
    for conversation in session.scalars(select(Conversation).where(Conversation.contact_id == new.id)):
        if conversation.status == "open" and conversation.channel_id in open_channels:
            log.warning("telegram supergroup %s has its own open conversation %s; it stays apart",
                        new_chat_id, conversation.id)
            continue
        conversation.contact_id = old.id
    session.flush()
    update_contact(session, new, {"user_id": None, "updated_at": now})
    update_contact(session, old, {"user_id": chat_key(new_chat_id), "updated_at": now})
