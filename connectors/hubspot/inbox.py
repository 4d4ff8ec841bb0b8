"""Inbox mode: WhatsApp conversations as threads of a custom channel in HubSpot's
Conversations inbox (README.md, "Inbox mode", for the API facts and their sources).

Inbound: each `message.received` is published once (POST .../custom-channels/{channelId}/messages,
messageDirection INCOMING) into the thread of its hub conversation (integrationThreadId =
the conversation id), the sender by phone (HS_PHONE_NUMBER) so HubSpot associates the
contact, to the channel account of the WhatsApp number the customer wrote to. The hub's
own outbound messages (operators in the hub, automations, templates) go in as OUTGOING.

Exactly once: an intent per message is stored before the request and each body carries
integrationIdempotencyId "hub-msg-<id>", so a retry after a lost answer names the same
message to HubSpot; the returned message id is stored (link "hubspot_inbox_msg") the
moment HubSpot answers, and a stored link means done.

Outbound: an agent's reply arrives as OUTGOING_CHANNEL_MESSAGE_CREATED (inbox_hooks.py);
the hub keeps ("crm_message", hub message id) -> HubSpot message id with the queued
message, so its `message.sent` / `message.status` events become statusType SENT / READ /
FAILED (with Meta's reason in plain words) on that HubSpot message.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Mapping

from connectors.base import HubEvent, LinkStore, Outcome, media_link
from connectors.person import as_person
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.errors import HubSpotError, Unavailable
from connectors.whatsapp_words import failure_text

log = logging.getLogger(__name__)

MODE_TIMELINE, MODE_INBOX, MODE_BOTH = "timeline", "inbox", "both"
MODES = (MODE_TIMELINE, MODE_INBOX, MODE_BOTH)
INBOX_TYPES = frozenset({"message.received", "message.sent", "message.status"})
PUBLISHED = "hubspot_inbox_msg"      # hub message id -> HubSpot message id (published by the hub)
INTENT = "hubspot_inbox_intent"      # hub message id -> "<unix time>:<token>" before the request
CRM_MESSAGE = "crm_message"          # hub message id -> HubSpot message id (typed by an agent); hub/crm/commands.py
PHONE = "HS_PHONE_NUMBER"
MAX_TEXT = 65_000
# What the custom channel can do, as registered (capabilities of the channel create body).
CAPABILITIES = {"deliveryIdentifierTypes": [PHONE], "richText": [], "threadingModel": "INTEGRATION_THREAD_ID",
                "allowInlineImages": False, "allowOutgoingMessages": True, "outgoingAttachmentTypes": [],
                "allowedFileAttachmentMimeTypes": [], "maxFileAttachmentCount": 0,
                "maxFileAttachmentSizeBytes": 0, "maxTotalFileAttachmentSizeBytes": 0,
                "allowConversationStart": False, "maxTextLength": 4096}

class PayloadError(ValueError):
    """The event lacks what the inbox needs: a dead letter naming it."""


def require(data: Any, key: str) -> Any:
    if not isinstance(data, Mapping) or data.get(key) is None:
        raise PayloadError(f"missing {key}")
    return data[key]


def thread_id(conversation_id: Any) -> str:
    return str(conversation_id)


def conversation_of(integration_thread_id: Any) -> int | None:
    text = str(integration_thread_id or "")
    return int(text) if text.isdigit() else None


def idempotency_id(message_id: Any) -> str:
    return f"hub-msg-{message_id}"


def participant(phone: str, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"deliveryIdentifier": {"type": PHONE, "value": phone}}
    if name:
        out["name"] = str(name)[:200]
    return out


def message_text(message: Mapping[str, Any]) -> str:
    """The text shown in the thread; media as the hub's signed link (publishing a file
    attachment needs a HubSpot file id, i.e. an upload to the Files API first)."""
    wa_type = message.get("type") or "text"
    media = message.get("media") or None
    text = str(message.get("text") or (media or {}).get("caption") or "")
    template = message.get("template")
    if not text and isinstance(template, Mapping):
        text = f"[template {template.get('name')}]"
    link = media_link(media)
    if link:
        name = (media or {}).get("filename")
        text = "\n".join(p for p in (text, f"[{wa_type}{': ' + name if name else ''}] {link}") if p)
    return (text or f"[{wa_type}]")[:MAX_TEXT]


def publish_body(data: Mapping[str, Any], channel_account_id: str, business_phone: str) -> dict[str, Any]:
    """The message as POST .../messages wants it: INCOMING from the customer, or OUTGOING
    (the hub's own messages) from the business number to the customer."""
    message = require(data, "message")
    # the person's phone (connectors.person): HubSpot associates every channel's thread of
    # a linked contact with the person's one contact
    contact = as_person(require(data, "contact"))
    conversation = require(data, "conversation")
    phone = contact.get("phone") or (f"+{contact['wa_id']}" if contact.get("wa_id") else None)
    if not phone:
        raise PayloadError("the contact has no phone number to name the sender by")
    customer = participant(phone, contact.get("name"))
    channel = conversation.get("channel") or {}
    incoming = message.get("direction") != "out"
    author = message.get("author") if isinstance(message.get("author"), Mapping) else None
    business = participant(business_phone, (author or {}).get("name") or channel.get("name"))
    return {
        "text": message_text(message),
        "attachments": [],
        "messageDirection": "INCOMING" if incoming else "OUTGOING",
        "integrationThreadId": thread_id(require(conversation, "id")),
        "integrationIdempotencyId": idempotency_id(require(message, "id")),
        "channelAccountId": str(channel_account_id),
        "senders": [customer if incoming else business],
        "recipients": [business if incoming else customer],
        "timestamp": str(message.get("timestamp") or ""),
    }


def status_body(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The PATCH body for a hub message status, or None (delivered: HubSpot has no such
    status; SENT stands until READ)."""
    status = message.get("status")
    if status == "sent":
        return {"statusType": "SENT"}
    if status == "read":
        return {"statusType": "READ"}
    if status == "failed":
        return {"statusType": "FAILED", "errorMessage": failure_text(message.get("error"))}
    return None


class InboxSync:
    """One wave of inbox-mode events. `account_for(channel)` gives the channel account of
    a hub WhatsApp channel (creating it when needed); `failure(exc)` turns a client error
    into an outcome."""

    def __init__(self, client: HubSpotClient, links: LinkStore, channel_id: str,
                 account_for: Callable[[Mapping[str, Any]], tuple[str, str]],
                 failure: Callable[[Exception], Outcome]):
        self.client = client
        self.links = links
        self.channel_id = channel_id
        self.account_for = account_for
        self.failure = failure

    def run(self, batch: list[HubEvent]) -> list[Outcome]:
        self._declare_intents(batch)
        return [self._one(event) for event in batch]

    def _publishable(self, event: HubEvent) -> str | None:
        message = event.data.get("message") if isinstance(event.data, Mapping) else None
        if not isinstance(message, Mapping) or message.get("id") is None:
            return None
        if event.type == "message.received" and message.get("direction") != "out":
            return str(message["id"])
        if event.type == "message.sent" and message.get("direction") == "out":
            return str(message["id"])
        return None

    def _declare_intents(self, batch: list[HubEvent]) -> None:
        """One transaction for the wave's intents, before any request."""
        keys = [k for k in (self._publishable(e) for e in batch) if k]
        if not keys:
            return
        done = self.links.get_many(PUBLISHED, keys)
        typed = self.links.get_many(CRM_MESSAGE, keys)
        todo = [k for k in keys if k not in done and k not in typed]
        if todo:
            token = f"{time.time():.3f}:{uuid.uuid4().hex[:12]}"
            self.links.put_many(INTENT, [(k, "intent", token) for k in todo])

    def _one(self, event: HubEvent) -> Outcome:
        if event.type not in INBOX_TYPES:
            return Outcome.done({"skipped": f"{event.type} has no place in the inbox"})
        try:
            message = require(event.data, "message")
            hub_id = str(require(message, "id"))
            typed = self.links.get(CRM_MESSAGE, hub_id)
            if typed:
                return self._status(typed, message)
            if self._publishable(event):
                return self._publish(event, hub_id)
            return Outcome.done({"skipped": "not a message typed in the HubSpot inbox"})
        except PayloadError as exc:
            return Outcome.dead(f"{event.type} {event.id}: {exc}")
        except (HubSpotError, Unavailable) as exc:
            return self.failure(exc)

    def _publish(self, event: HubEvent, hub_id: str) -> Outcome:
        known = self.links.get(PUBLISHED, hub_id)
        if known:
            return Outcome.done({"hubspot_message_id": known, "again": True})
        conversation = require(event.data, "conversation")
        account_id, business_phone = self.account_for(conversation.get("channel") or {})
        body = publish_body(event.data, account_id, business_phone)
        answer = self.client.publish_message(self.channel_id, body)
        message_id = str(answer.get("id") or "")
        if message_id:
            self.links.put(PUBLISHED, hub_id, "inbox_message", message_id[:64])
        return Outcome.done({"hubspot_message_id": message_id, "thread": answer.get("conversationsThreadId"),
                             "direction": body["messageDirection"]})

    def _status(self, hubspot_id: str, message: Mapping[str, Any]) -> Outcome:
        body = status_body(message)
        if body is None:
            return Outcome.done({"hubspot_message_id": hubspot_id, "status": message.get("status")})
        self.client.update_message_status(self.channel_id, hubspot_id, body)
        return Outcome.done({"hubspot_message_id": hubspot_id, "statusType": body["statusType"]})
