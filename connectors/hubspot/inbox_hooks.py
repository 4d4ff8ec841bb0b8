"""HubSpot -> hub in inbox mode: an agent's reply in the Conversations inbox.

HubSpot POSTs OUTGOING_CHANNEL_MESSAGE_CREATED to the custom channel's webhookUrl, signed
X-HubSpot-Signature-v3 with the app's client secret (checked by the connector; 401 when
wrong). Body: {"type", "portalId", "channelId", "channelAccountId", "integrationThreadId"?,
"message": {PublicConversationsMessage: "id", "conversationsThreadId", "text", "richText",
"senders", "recipients", "attachments", "direction": "OUTGOING", ...}}. The thread's
integrationThreadId is the hub conversation id (inbox.py). The SendText carries the
idempotency key "hubspot-inbox:<message id>", so the same webhook twice sends once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors.base import SendText, WebhookRejected
from connectors.hubspot.inbox import conversation_of

EVENT_TYPE = "OUTGOING_CHANNEL_MESSAGE_CREATED"


@dataclass(frozen=True)
class AgentMessage:
    message_id: str
    conversation_id: int | None  # the hub conversation, None when the thread is not ours
    text: str
    author: str
    channel_id: str


def is_inbox_hook(body: bytes) -> bool:
    """HubSpot's CRM webhooks are JSON arrays; the custom channel's are one object."""
    return body.lstrip()[:1] == b"{"


def parse(body: bytes) -> AgentMessage | None:
    """The agent's message, or None for an event the hub does not act on."""
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRejected(400, "the custom channel webhook's body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "the custom channel webhook's body is not an object")
    if data.get("type") != EVENT_TYPE:
        return None
    message = data.get("message")
    if not isinstance(message, dict) or not message.get("id"):
        raise WebhookRejected(400, f"{EVENT_TYPE} without message.id")
    thread = data.get("integrationThreadId") or message.get("integrationThreadId")
    text = str(message.get("text") or "").strip()
    files = [a for a in message.get("attachments") or [] if isinstance(a, dict) and a.get("url")]
    if files:
        text = "\n".join([text] + [f"{a.get('name') or 'file'} {a['url']}" for a in files]).strip()
    sender = next((s for s in message.get("senders") or [] if isinstance(s, dict)), {})
    return AgentMessage(str(message["id"]), conversation_of(thread), text, str(sender.get("name") or ""),
                        str(data.get("channelId") or message.get("channelId") or ""))


def command(message: AgentMessage) -> SendText:
    return SendText(text=message.text, conversation_id=int(message.conversation_id or 0), author=message.author,
                    idempotency_key=f"hubspot-inbox:{message.message_id}", crm_message_id=message.message_id)


def refusals(commands: list[Any], results: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(HubSpot message id, result) of each agent message the hub refused to send."""
    return [(c.crm_message_id, r) for c, r in zip(commands, results)
            if isinstance(c, SendText) and c.crm_message_id and c.idempotency_key
            and c.idempotency_key.startswith("hubspot-inbox:") and not r.get("ok")]
