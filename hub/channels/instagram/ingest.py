"""Store what an Instagram messaging webhook means, in the caller's transaction (the
"instagram" raw-webhook processor of hub.events.raw_webhooks: the raw body is kept in the same
transaction, so a body that does not parse is stored, marked failed and replayable).

Customers are contacts keyed "ig:<IGSID>"; each message is keyed "ig:<mid>" (Meta's
retries and repeats change nothing). Every customer event that Meta counts as the
customer writing (a message, a button press, a reaction, a referral from an ad or an
ig.me link) refreshes the conversation's window; a deleted message marks the original.
The first event of a conversation decides its lead source: a tracked-link code in the
link's ref or the text, else the ad (ad_id, ref, title), else direct.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels.first_message import emit_stored
from hub.channels.inbound_writes import can_ride, insert_message, insert_message_with_event
from hub.channels.instagram.echo import store_echo
from hub.channels.instagram.parse import parse
from hub.channels.instagram.profiles import queue_fetch
from hub.channels.instagram.types import Ignored, InstagramEvent, ParsedWebhook
from hub.conversations.store import ensure_contact, find_for_message, open_conversation_row
from hub.events.raw_webhooks import Processor, register_processor
from hub.models import Channel, Contact, Message, RawWebhook
from hub.tracking.matching import DEFAULT_WINDOW, attribute_first_message

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
SOURCE = "instagram"
# What a media attachment is, for the hub's media payloads.
MIME_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mp4"}


def message_key(event: InstagramEvent) -> str:
    """messages.wa_message_id of an event: Meta's mid where the event is a message."""
    ms = int(event.timestamp.timestamp() * 1000)
    if event.kind == "reaction":
        return f"ig:{event.mid}:{event.reaction['action']}:{event.sender_id}:{ms}"[:255]
    if event.kind == "deleted":
        return f"ig:{event.mid}:deleted"[:255]
    if event.kind == "referral":
        return f"ig:referral:{event.sender_id}:{ms}"
    return f"ig:{event.mid}"[:255]


def apply(session: Session, parsed: ParsedWebhook, raw: RawWebhook, now: datetime, runtime: "Runtime",
          channel: Any = None) -> None:
    channel = channel or session.get(Channel, raw.channel_id)
    if channel is None:
        log.warning("instagram webhook %s is for a channel that is gone", raw.id)
        return
    window = timedelta(days=runtime.config.tracking.attribution_window_days)
    for item in parsed.items:
        if isinstance(item, Ignored):
            log.info("instagram webhook %s: %s (kept in the raw webhook)", raw.id, item.reason)
        elif item.account_id != channel.phone_number_id.removeprefix("ig:"):
            log.warning("instagram webhook %s: an event for account %s on channel %s is not applied",
                        raw.id, item.account_id, channel.id)
        else:
            store_event(session, channel, item, now, attribution_window=window,
                        media_link=lambda message_id: runtime.media_links.url(message_id, now=now))


def split(parsed: ParsedWebhook) -> list[tuple[str, ParsedWebhook]]:
    return [(f"event {i} ({getattr(item, 'kind', '')})", ParsedWebhook(items=(item,)))
            for i, item in enumerate(parsed.items)]


def _media(event: InstagramEvent) -> dict[str, Any] | None:
    if not event.attachments or not event.attachments[0].get("url"):
        return None
    first = event.attachments[0]
    # The CDN URL is the attachment's only handle: /api/v1/messages/<id>/media fetches it.
    return {"id": first["url"], "link": first["url"], "kind": first["type"], "filename": first.get("title"),
            "mime_type": MIME_TYPES.get(first["type"]), "caption": None}


def _message_payload(event: InstagramEvent) -> dict[str, Any]:
    """What automations and payloads read: a press as WhatsApp's interactive
    button_reply, a reaction as WhatsApp's reaction."""
    if event.button is not None:
        return {"interactive": {"type": "button_reply", "button_reply": event.button}}
    if event.reaction is not None:
        return {"reaction": {"message_id": f"ig:{event.reaction['mid']}", "emoji": event.reaction["emoji"] or ""}}
    return event.raw.get("message") or {}


def _payload(event: InstagramEvent) -> dict[str, Any]:
    extra = {name: value for name, value in (("story", event.story), ("reaction", event.reaction),
                                             ("referral", event.referral)) if value}
    if len(event.attachments) > 1:
        extra["attachments"] = list(event.attachments)
    return {"message": _message_payload(event), "media": _media(event), **extra,
            "instagram": {"kind": event.kind, "mid": event.mid, "sender_id": event.sender_id,
                          "account_id": event.account_id}}


def lead_source(session: Session, conversation: Any, message: Message, referral: dict[str, Any] | None, *,
                window: timedelta, now: datetime) -> dict[str, Any]:
    """A tracked-link code in the link's ref (ig.me/m/<account>?ref=<code>) or in the
    text; else the ad the customer came from; else direct."""
    ref = (referral or {}).get("ref")
    if ref:
        source = attribute_first_message(session, conversation, message, referral=None, window=window, now=now,
                                         code_text=ref)
        if source["kind"] == "tracked_link":
            return source
    context = (referral or {}).get("ads_context_data") or {}
    is_ad = bool(referral) and (referral.get("source") == "ADS" or bool(referral.get("ad_id")))
    ad = {"source_type": "ad", "source_id": referral.get("ad_id"), "headline": context.get("ad_title"),
          "source_url": None, "body": None, "media_type": "video" if context.get("video_url") else
          "image" if context.get("photo_url") else None, "ctwa_clid": None} if is_ad else None
    source = attribute_first_message(session, conversation, message, referral=ad, window=window, now=now)
    if source["kind"] != "tracked_link" and referral:
        source["campaign"] = source.get("campaign") or ref
        source["referral"] = {**(source.get("referral") or {}), "ref": ref, "ad_id": referral.get("ad_id"),
                              "source": referral.get("source")}
    return source


def store_event(session: Session, channel: Any, event: InstagramEvent, now: datetime, *,
                attribution_window: timedelta = DEFAULT_WINDOW, media_link: Any = None) -> Message | None:
    """One customer event as a message, and its events; None when stored before. An
    echo of the account's own message goes on the timeline without events (echo.py)."""
    key = message_key(event)
    if event.kind == "echo":
        return store_echo(session, channel, event, key=key, payload=_payload(event), now=now)
    sender = find_for_message(session, channel_id=channel.id, wa_id=None, user_id=event.contact_key,
                              wa_message_id=key)
    if sender.duplicate:
        return None
    contact = sender.contact or ensure_contact(session, wa_id=None, user_id=event.contact_key, now=now)
    if contact.unreachable_at is not None:  # writing again means Instagram will carry messages to them again
        session.execute(update(Contact).where(Contact.id == contact.id)
                        .values(unreachable_at=None, unreachable_reason=None, updated_at=now))
    at = event.timestamp
    conversation, started = (sender.conversation, False) if sender.conversation is not None else \
        open_conversation_row(session, channel_id=channel.id, contact_id=contact.id, now=at)
    if started and not contact.name:  # the webhook names no one: a worker asks Meta (profiles.py)
        queue_fetch(session, contact.id, channel.id, now)
    text = event.reaction["emoji"] if event.reaction else event.text
    message = Message(conversation_id=conversation.id, wa_message_id=key, direction="in", type=event.type,
                      text=text, payload=_payload(event), status="received", sent_at=at, attempts=0,
                      created_at=now, updated_at=now,
                      reply_to=f"ig:{event.reply_to_mid}" if event.reply_to_mid else None)
    changes: dict[str, Any] = {}
    if event.kind != "deleted" and (conversation.last_inbound_at is None or at > conversation.last_inbound_at):
        changes["last_inbound_at"] = at  # the 24-hour window and the 7-day human-agent window run from here
    if conversation.last_message_at is None or at > conversation.last_message_at:
        changes["last_message_at"] = at
    if started:
        changes["lead_source"] = lead_source(session, conversation, message, event.referral,
                                             window=attribution_window, now=now)
    rides = not started and can_ride(session, sender)
    if rides:  # PostgreSQL: the message, its conversation's changes, the raw row and its event at once
        message.id = sender.next_message_id
        insert_message_with_event(session, channel, contact, conversation, message, changes, now=now,
                                  media_link=media_link)
    else:
        insert_message(session, message, conversation, changes)
    if event.kind == "deleted":
        _mark_deleted(session, event)
    if not rides:
        emit_stored(session, conversation, contact, message, channel=channel, started=started,
                    first_text=event.text or "", now=now, media_link=media_link)
    return message


def _mark_deleted(session: Session, event: InstagramEvent) -> None:
    original = session.scalar(select(Message).where(Message.wa_message_id == f"ig:{event.mid}"))
    if original is not None:
        original.payload = {**(original.payload or {}), "revoked_at": payloads.iso(event.timestamp)}


register_processor(SOURCE, Processor(parse=parse, apply=apply, split=split))
