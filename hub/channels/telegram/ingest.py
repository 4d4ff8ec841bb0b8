"""Store what a Telegram update means, in the caller's transaction (the "telegram"
raw-webhook processor of hub.events.raw_webhooks: the raw body is kept in the same transaction, so a
body that does not parse is stored, marked failed and replayable).

Each update_id is applied once per bot (channel_updates): Telegram resends an update
whose answer it did not get, and a repeated one changes nothing. Private-chat messages
become the contact (keyed "tg:<user id>", with name and @username), their open
conversation on the bot and a message keyed "tg:<channel>:<chat>:<message id>", with
the same events as WhatsApp's (conversation.started, lead.attributed,
message.received) and the same routing and lead-source attribution. A group (group
or supergroup) is one conversation whose contact is the group (keyed "tg:<chat id>",
negative, named by its title); each message names the member who wrote
(`payload.member`); joins, departures and renames are system messages on its open
conversation, and the move to a supergroup re-keys the group's contact.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels.first_message import emit_stored
from hub.channels.inbound_writes import can_ride, insert_message, insert_message_with_event
from hub.channels.telegram.compose import message_key
from hub.channels.telegram.groups import group_event
from hub.channels.telegram.parse import parse
from hub.channels.telegram.types import GroupEvent, Ignored, MemberChange, ParsedUpdate, TelegramMessage
from hub.conversations.store import ensure_contact, find_contact_row, find_for_message, open_conversation_row, \
    refresh_contact, update_contact
from hub.events.raw_webhooks import Processor, register_processor
from hub.models import Channel, ChannelUpdate, Contact, Message, RawWebhook
from hub.conversations.persons import link_shared_phone
from hub.shared.phones import to_e164
from hub.tracking.matching import DEFAULT_WINDOW, attribute_first_message

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
SOURCE = "telegram"
BLOCKED = "blocked the bot on Telegram"
REMOVED = "the bot was removed from the Telegram group"
_updates = ChannelUpdate.__table__
_INSERT_UPDATE = {
    "postgresql": postgresql.insert(_updates).on_conflict_do_nothing().returning(_updates.c.update_id),
    "sqlite": sqlite.insert(_updates).on_conflict_do_nothing().returning(_updates.c.update_id),
}


def first_time(session: Session, channel_id: int, update_id: int, now: datetime) -> bool:
    """Record the update id; False when this bot's update was applied before."""
    dialect = session.get_bind().dialect.name
    row = session.execute(_INSERT_UPDATE[dialect], {"channel_id": channel_id, "update_id": update_id,
                                                    "received_at": now}).first()
    return row is not None


def apply(session: Session, parsed: ParsedUpdate, raw: RawWebhook, now: datetime, runtime: "Runtime",
          channel: Any = None) -> None:
    channel = channel or session.get(Channel, raw.channel_id)
    if channel is None:
        log.warning("telegram update %s is for a channel that is gone", parsed.update_id)
        return
    if not first_time(session, channel.id, parsed.update_id, now):
        log.info("telegram update %s of channel %s was applied before", parsed.update_id, channel.id)
        return
    item = parsed.item
    window = timedelta(days=runtime.config.tracking.attribution_window_days)
    if isinstance(item, TelegramMessage):
        store_message(session, channel, item, now, attribution_window=window,
                      media_link=lambda message_id: runtime.media_links.url(message_id, now=now))
    elif isinstance(item, GroupEvent):
        group_event(session, channel, item, now, media_link=lambda message_id: runtime.media_links.url(
            message_id, now=now))
    elif isinstance(item, MemberChange):
        member_change(session, item, now)
    elif isinstance(item, Ignored):
        log.info("telegram update %s: %s (kept in the raw webhook)", parsed.update_id, item.reason)


def _payload(m: TelegramMessage) -> dict[str, Any]:
    payload = {"message": m.raw, "media": m.media, "content": m.content or None, "original_type": m.original_type,
               "telegram": {"chat_id": m.chat_id, "message_id": m.message_id, "user_id": m.sender.id}}
    if m.in_group:
        payload["member"] = m.member
        payload["telegram"]["chat_type"] = m.chat_type
    return payload


def store_message(session: Session, channel: Any, m: TelegramMessage, now: datetime, *,
                  attribution_window: timedelta = DEFAULT_WINDOW, media_link: Any = None) -> Message | None:
    """One message (or edit) of a private chat, and its events; None when stored before."""
    if m.callback_id:  # a button press: the message is the bot's, the press has an id of its own
        key = f"tg:{channel.id}:{m.chat_id}:cb{m.callback_id}"[:255]
    elif m.edit:
        key = message_key(channel.id, m.chat_id, m.message_id) + f"@{int((m.edit_date or m.date).timestamp())}"
    else:
        key = message_key(channel.id, m.chat_id, m.message_id)
    user_key = m.contact_key
    sender = find_for_message(session, channel_id=channel.id, wa_id=None, user_id=user_key, wa_message_id=key)
    if sender.duplicate:
        return None
    name, username = (m.chat_title or "", m.chat_username) if m.in_group else (m.sender.name, m.sender.username)
    contact, created = sender.contact, sender.contact is None
    if contact is None:
        contact = ensure_contact(session, wa_id=None, user_id=user_key, name=name, username=username, now=now)
    else:
        refresh_contact(session, contact, wa_id=None, user_id=user_key, name=name, username=username, now=now)
    # Writing to the bot again (in a group: the bot hears it, so it is in it) means it is reachable.
    if contact.unreachable_at is not None:
        session.execute(update(Contact).where(Contact.id == contact.id)
                        .values(unreachable_at=None, unreachable_reason=None, updated_at=now))
    if _shares_own_contact(m):
        merge = link_shared_phone(session, contact.id, m.content.get("phone_number"), now=now)
        if merge is not None:
            contact.person_id, contact.phone = merge.person_id, session.get(Contact, contact.id).phone
        else:  # no WhatsApp contact has it (yet): the phone is still theirs, for the CRM and the inbox
            phone = to_e164(m.content.get("phone_number"))
            if phone and phone != contact.phone:
                update_contact(session, contact, {"phone": phone, "updated_at": now}, announce=not created)
    # A press carries no time of its own: it is now.
    at = now if m.callback_id else (m.edit_date or m.date) if m.edit else m.date
    conversation, started = (sender.conversation, False) if sender.conversation is not None else \
        open_conversation_row(session, channel_id=channel.id, contact_id=contact.id, now=at)
    message = Message(conversation_id=conversation.id, wa_message_id=key, direction="in",
                      type="edit" if m.edit else m.type, text=m.text, payload=_payload(m), status="received",
                      sent_at=at, attempts=0, created_at=now, updated_at=now,
                      reply_to=message_key(channel.id, m.chat_id, m.reply_to_message_id)
                      if m.reply_to_message_id is not None else None)
    changes: dict[str, Any] = {}
    if conversation.last_inbound_at is None or at > conversation.last_inbound_at:
        changes["last_inbound_at"] = at
    if conversation.last_message_at is None or at > conversation.last_message_at:
        changes["last_message_at"] = at
    if started:
        changes["lead_source"] = attribute_first_message(session, conversation, message, referral=None,
                                                         window=attribution_window, now=now)
    rides = not started and can_ride(session, sender)
    if rides:  # PostgreSQL: the message, its conversation's changes, the raw row and its event at once
        message.id = sender.next_message_id
        insert_message_with_event(session, channel, contact, conversation, message, changes, now=now,
                                  media_link=media_link)
    else:
        insert_message(session, message, conversation, changes)
    if m.edit:
        _annotate_original(session, channel.id, m)
    if not rides:
        emit_stored(session, conversation, contact, message, channel=channel, started=started,
                    first_text=m.text or "", now=now, media_link=media_link)
    return message


def _shares_own_contact(m: TelegramMessage) -> bool:
    """A contact the user shared as their own (the "share my phone" button) in a private
    chat, not someone else's card: only then is its phone theirs. In a group the
    conversation's contact is the group, so a shared contact links nobody."""
    return m.type == "contacts" and not m.edit and not m.in_group and m.content.get("user_id") == m.sender.id


def _annotate_original(session: Session, channel_id: int, m: TelegramMessage) -> None:
    original = session.scalar(select(Message).where(
        Message.wa_message_id == message_key(channel_id, m.chat_id, m.message_id)))
    if original is not None:
        original.payload = {**(original.payload or {}),
                            "edited_at": payloads.iso(m.edit_date or m.date), "edited_text": m.text}


def member_change(session: Session, change: MemberChange, now: datetime) -> None:
    """The user blocked the bot ("kicked"), or the bot was removed from a group ("left",
    "kicked"): the contact is unreachable until the bot is back or the user writes again."""
    contact = find_contact_row(session, wa_id=None, user_id=change.contact_key)
    if contact is None:
        log.info("a Telegram chat the hub does not know changed the bot's membership")
        return
    if change.blocked:
        values = {"unreachable_at": change.date, "unreachable_reason": REMOVED if change.in_group else BLOCKED}
    elif change.restored:
        values = {"unreachable_at": None, "unreachable_reason": None}
    else:
        return
    session.execute(update(Contact).where(Contact.id == contact.id).values(updated_at=now, **values))


register_processor(SOURCE, Processor(parse=parse, apply=apply))
