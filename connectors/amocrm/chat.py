"""Chat mode: WhatsApp conversations as real chats in amoCRM (Chats API, amojo).

Inbound: each `message.received` becomes one `new_message` in the chat of its hub
conversation (conversation_id "wa-conv-<id>", msgid the WhatsApp message id, so a retry
names the same message). The amojo message id is stored as the link
("amojo_msg", hub message id) the moment amojo answers; a stored link means done.

The hub's own outbound messages (operators in the hub, automations, templates) go into
the chat too, as the integration bot's silent messages to the customer (`message.sent`).

Outbound: a manager's message arrives as amoCRM's webhook v2 (hooks.py turns it into a
SendText carrying the amojo message id); the hub stores ("crm_message", hub message id)
-> amojo id with the queued message, so the `message.sent` / `message.status` events of
that message are reported back with delivery_status (1 delivered, 2 read, -1 error with
Meta's reason in plain words). "Sent" has no value in amojo's list: a message is sent
once its hook was answered.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from connectors.amocrm import mapping
from connectors.amocrm.amojo import AmojoClient, NotConnected
from connectors.amocrm.errors import AmoError
from connectors.base import HubEvent, LinkStore, Outcome, media_link
from connectors.person import as_person
from connectors.whatsapp_words import failure_text

log = logging.getLogger(__name__)

INBOUND_LINK = "amojo_msg"  # hub message id -> amojo message id (posted into the chat)
CRM_MESSAGE = "crm_message"  # hub message id -> amojo message id (typed by a manager); hub/crm/commands.py
WAMID_LINK = "amojo_wamid"  # WhatsApp id of a manager's message -> amojo id (for reply quotes)
CHAT_TYPES = frozenset({"message.received", "message.sent", "message.status"})
CONVERSATION_PREFIX = "wa-conv-"

# WhatsApp type -> amojo message type
TYPES = {"text": "text", "image": "picture", "video": "video", "audio": "voice", "document": "file",
         "sticker": "sticker"}
FILE_TYPES = {"picture", "video", "file"}

def conversation_ref(conv_id: Any) -> str:
    return f"{CONVERSATION_PREFIX}{conv_id}"


def conversation_of(ref: str | None) -> int | None:
    if not ref or not ref.startswith(CONVERSATION_PREFIX):
        return None
    rest = ref[len(CONVERSATION_PREFIX):]
    return int(rest) if rest.isdigit() else None


def sender_of(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The customer as a chat participant: one per person, so amoCRM binds every
    channel's chat of a linked contact to the person's contact (the chat user's
    client_id names the contact; a chat keeps the user it started with)."""
    contact = as_person(contact)
    out: dict[str, Any] = {"id": f"wa-contact-{mapping.require(contact, 'id')}", "name": mapping.contact_name(contact)}
    phone = mapping.e164(contact.get("phone"))
    if phone:
        out["profile"] = {"phone": phone}
    return out


def message_part(message: Mapping[str, Any]) -> dict[str, Any]:
    """The hub message as amojo's `message` object; media as the signed link the hub puts
    in events (the same link the timeline notes carry)."""
    wa_type = message.get("type") or "text"
    media = message.get("media") or None
    link = media_link(media)
    kind = TYPES.get(wa_type, "text")
    text = message.get("text") or ""
    if kind != "text" and not link:
        kind = "text"  # nothing to download: say what it was
    if kind == "text":
        text = text or f"[{wa_type}]"
        if link:
            text = f"{text}\n{link}"
        return {"type": "text", "text": text[:mapping.MAX_NOTE]}
    part: dict[str, Any] = {"type": kind, "text": ((media or {}).get("caption") or text or "")[:mapping.MAX_NOTE],
                            "media": link}
    if kind in FILE_TYPES:
        # The event carries no size; amojo wants one for these types (0: unknown, assumed accepted).
        part["file_name"] = (media or {}).get("filename") or f"{wa_type}"
        part["file_size"] = int((media or {}).get("file_size") or 0)
    return part


def new_message(data: Mapping[str, Any], reply_ref: dict[str, Any] | None) -> dict[str, Any]:
    conversation = mapping.require(data, "conversation")
    message = mapping.require(data, "message")
    contact = mapping.require(data, "contact")
    stamp = mapping.unix(message.get("timestamp")) or 0
    when = message.get("timestamp")
    msec = stamp * 1000
    if isinstance(when, str) and "." in when:
        try:
            frac = when.split(".", 1)[1].rstrip("Z")[:3].ljust(3, "0")
            msec += int(frac)
        except ValueError:
            pass
    payload: dict[str, Any] = {
        "timestamp": stamp,
        "msec_timestamp": msec,
        "msgid": str(message.get("wa_message_id") or f"hub-msg-{mapping.require(message, 'id')}"),
        "conversation_id": conversation_ref(mapping.require(conversation, "id")),
        "sender": sender_of(contact),
        "message": message_part(message),
        "silent": False,
    }
    if reply_ref:
        payload["reply_to"] = {"message": reply_ref}
    return {"event_type": "new_message", "payload": payload}


def outgoing_message(data: Mapping[str, Any]) -> dict[str, Any]:
    """A message the hub sent (an operator in the hub, an automation, a template) as the
    integration bot's message to the customer, so the amoCRM chat shows the whole talk;
    silent: no Unsorted lead, no notification. amojo sends no hook for it."""
    body = new_message(data, None)
    message = mapping.require(data, "message")
    payload = body["payload"]
    payload["receiver"] = payload.pop("sender")
    author = (message.get("author") or {}).get("name") if isinstance(message.get("author"), Mapping) else None
    channel = (mapping.require(data, "conversation").get("channel") or {})
    payload["sender"] = {"id": f"wa-channel-{channel.get('id') or 'hub'}",
                         "name": str(author or channel.get("name") or "WhatsApp")[:mapping.MAX_TEXT]}
    template = message.get("template")
    if isinstance(template, Mapping) and payload["message"].get("type") == "text" and not message.get("text"):
        payload["message"]["text"] = f"[template {template.get('name')}]"
    payload["silent"] = True
    return body


def status_report(message: Mapping[str, Any]) -> tuple[int, int | None, str | None] | None:
    """(delivery_status, error_code, error) for a hub message status, or None (sent)."""
    status = message.get("status")
    if status == "delivered":
        return 1, None, None
    if status == "read":
        return 2, None, None
    if status == "failed":
        return -1, 905, failure_text(message.get("error"))
    return None


class ChatSync:
    """One wave of chat-mode events; `scope()` gives the connected scope_id (connecting
    when needed), `reconnect()` connects again after amojo stopped knowing it."""

    def __init__(self, client: AmojoClient, links: LinkStore, scope: Callable[[], str],
                 reconnect: Callable[[], str], failure: Callable[[AmoError], Outcome]):
        self.client = client
        self.links = links
        self.scope = scope
        self.reconnect = reconnect
        self.failure = failure
        self._reconnected = False

    def _call(self, fn: Callable[[str], Any]) -> Any:
        try:
            return fn(self.scope())
        except NotConnected:
            if self._reconnected:
                raise
            self._reconnected = True
            log.info("amojo no longer knows the chat scope; connecting the channel again")
            return fn(self.reconnect())

    def run(self, batch: list[HubEvent]) -> list[Outcome]:
        return [self._one(event) for event in batch]

    def _one(self, event: HubEvent) -> Outcome:
        if event.type not in CHAT_TYPES:
            return Outcome.done({"skipped": f"{event.type} has no place in the chat"})
        try:
            if event.type == "message.received":
                return self._inbound(event)
            return self._status(event)
        except mapping.PayloadError as exc:
            return Outcome.dead(f"{event.type} {event.id}: {exc}")
        except AmoError as exc:
            return self.failure(exc)

    def _inbound(self, event: HubEvent) -> Outcome:
        message = mapping.require(event.data, "message")
        if message.get("direction") == "out":
            return Outcome.done({"skipped": "outbound"})
        key = str(mapping.require(message, "id"))
        known = self.links.get(INBOUND_LINK, key)
        if known:
            return Outcome.done({"amojo_msgid": known, "again": True})
        body = new_message(event.data, self._reply_ref(message.get("reply_to")))
        answer = self._call(lambda scope: self.client.send(scope, body))
        amojo_id = str((answer.get("new_message") or {}).get("msgid") or "")
        if amojo_id:
            self.links.put(INBOUND_LINK, key, "chat_message", amojo_id[:64])
        return Outcome.done({"amojo_msgid": amojo_id, "conversation_id": body["payload"]["conversation_id"]})

    def _outgoing(self, event: HubEvent, hub_id: str) -> Outcome:
        known = self.links.get(INBOUND_LINK, hub_id)
        if known:
            return Outcome.done({"amojo_msgid": known, "again": True})
        body = outgoing_message(event.data)
        answer = self._call(lambda scope: self.client.send(scope, body))
        amojo_id = str((answer.get("new_message") or {}).get("msgid") or "")
        if amojo_id:
            self.links.put(INBOUND_LINK, hub_id, "chat_message", amojo_id[:64])
        return Outcome.done({"amojo_msgid": amojo_id, "outgoing": True})

    def _reply_ref(self, wamid: str | None) -> dict[str, Any] | None:
        if not wamid:
            return None
        amojo_id = self.links.get(WAMID_LINK, str(wamid)[:64])
        return {"id": amojo_id} if amojo_id else {"msgid": str(wamid)}

    def _status(self, event: HubEvent) -> Outcome:
        message = mapping.require(event.data, "message")
        hub_id = str(mapping.require(message, "id"))
        amojo_id = self.links.get(CRM_MESSAGE, hub_id)
        if not amojo_id:
            if event.type == "message.sent" and message.get("direction") == "out":
                return self._outgoing(event, hub_id)
            return Outcome.done({"skipped": "not a message typed in the amoCRM chat"})
        if message.get("wa_message_id"):
            self.links.put(WAMID_LINK, str(message["wa_message_id"])[:64], "chat_message", amojo_id)
        report = status_report(message)
        if report is None:
            return Outcome.done({"amojo_msgid": amojo_id, "status": message.get("status")})
        status, code, text = report
        self._call(lambda scope: self.client.delivery_status(scope, amojo_id, status, code, text))
        return Outcome.done({"amojo_msgid": amojo_id, "delivery_status": status})
