"""amoCRM -> hub in chat mode: the Chats API's webhook v2 (a manager wrote in the chat).

The hook is JSON signed X-Signature = hex HMAC-SHA1(channel secret, body); a bad or
missing signature is refused (401) and nothing is sent. Body:
{"account_id", "time", "message": {"receiver": {"id", "phone", "client_id", ...},
"sender": {"id", "name"}, "conversation": {"id", "client_id"}, "timestamp",
"msec_timestamp", "message": {"id", "type", "text", "media", "file_name", ...}}}.
conversation.client_id is the hub's conversation ref ("wa-conv-<id>"). The SendText
carries idempotency key "amojo:<message id>", so the same hook twice sends once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors.amocrm.amojo import hook_signature_ok
from connectors.amocrm.chat import conversation_of
from connectors.base import InboundRequest, SendText, WebhookRejected


@dataclass(frozen=True)
class ManagerMessage:
    amojo_id: str
    conversation_id: int | None  # the hub conversation, None when the chat is not ours
    text: str
    author: str
    account_id: str


def is_chat_hook(request: InboundRequest) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return "x-signature" in headers or (headers.get("content-type") or "").startswith("application/json")


def parse(request: InboundRequest, secret: str, account_id: str | None) -> ManagerMessage:
    if request.method.upper() != "POST":
        raise WebhookRejected(405, "amoCRM chat hooks are POSTed")
    if not secret:
        raise WebhookRejected(403, "chat hook received, but no chat channel secret is set for this connector")
    given = next((v for k, v in request.headers.items() if k.lower() == "x-signature"), None)
    if not hook_signature_ok(secret, request.body, given):
        raise WebhookRejected(401, "the chat hook's X-Signature does not match the channel secret")
    try:
        body = json.loads(request.body)
    except ValueError:
        raise WebhookRejected(400, "the chat hook's body is not JSON") from None
    outer = body.get("message") if isinstance(body, dict) else None
    if not isinstance(outer, dict) or not isinstance(outer.get("message"), dict):
        raise WebhookRejected(400, "not an amoCRM chat hook (v2): message.message is missing")
    if account_id and body.get("account_id") and body["account_id"] != account_id:
        raise WebhookRejected(403, f"chat hook for amojo account {body['account_id']!r}, "
                                   f"not this connector's {account_id!r}")
    inner = outer["message"]
    amojo_id = str(inner.get("id") or "")
    if not amojo_id:
        raise WebhookRejected(400, "the chat hook's message has no id")
    conversation = outer.get("conversation") if isinstance(outer.get("conversation"), dict) else {}
    conv = conversation_of(conversation.get("client_id"))
    text = str(inner.get("text") or "").strip()
    media = str(inner.get("media") or "").strip()
    if media:
        name = str(inner.get("file_name") or "").strip()
        text = "\n".join(part for part in (text, f"{name} {media}".strip()) if part)
    sender = outer.get("sender") if isinstance(outer.get("sender"), dict) else {}
    return ManagerMessage(amojo_id, conv, text, str(sender.get("name") or ""), str(body.get("account_id") or ""))


def command(message: ManagerMessage) -> SendText:
    return SendText(text=message.text, conversation_id=int(message.conversation_id or 0), author=message.author,
                    idempotency_key=f"amojo:{message.amojo_id}", crm_message_id=message.amojo_id)


def refusals(commands: list[Any], results: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(amojo message id, result) of each chat message the hub refused to send."""
    out = []
    for c, r in zip(commands, results):
        if isinstance(c, SendText) and c.crm_message_id and not r.get("ok"):
            out.append((c.crm_message_id, r))
    return out
