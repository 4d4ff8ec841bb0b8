"""The emulator's Conversations inbox: inboxes, custom channels, channel accounts,
threads and messages, as the public spec describes them (HubSpot-public-api-spec-collection,
Conversations/Custom Channels v3 and Conversations v3; README.md "Inbox mode").

An agent's reply (`InboxHandle.agent_reply`) becomes an OUTGOING message in its thread and
an OUTGOING_CHANNEL_MESSAGE_CREATED webhook POSTed to the channel's webhookUrl, signed
X-HubSpot-Signature-v3 with the app's client secret. GET /inbox/threads shows the threads
as a page (no token needed), each with a form an agent replies through (POST
/inbox/threads/reply), for `hub demo`.
"""
from __future__ import annotations

import html
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from flask import Flask, Response, request

from connectors.hubspot import signature
from connectors.hubspot.emulator_errors import ApiError

PHONE = "HS_PHONE_NUMBER"
IDENTIFIER_TYPES = ("CHANNEL_SPECIFIC_OPAQUE_ID", "HS_EMAIL_ADDRESS", "HS_PHONE_NUMBER", "HS_SHORT_CODE")
STATUS_TYPES = ("SENT", "FAILED", "READ")
PAGE_PATH = "/inbox/threads"
REPLY_PATH = "/inbox/threads/reply"  # the page's reply form (hub demo)


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def default_inboxes() -> list[dict[str, Any]]:
    stamp = "2024-03-01T09:00:00.000Z"
    return [{"id": "147959634", "name": "Sales inbox", "type": "INBOX", "archived": False,
             "createdAt": stamp, "updatedAt": stamp},
            {"id": "147959635", "name": "Support", "type": "INBOX", "archived": False,
             "createdAt": stamp, "updatedAt": stamp}]


Transport = Callable[[str, bytes, dict[str, str]], tuple[int, str]]


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    try:
        r = requests.post(url, data=body, headers=headers, timeout=10)
        return r.status_code, r.text
    except requests.RequestException as exc:
        return 0, str(exc)


@dataclass
class InboxState:
    developer_api_key: str = "dev-api-key-emulator-0000"
    app_id: str = "3120455"
    inboxes: list[dict[str, Any]] = field(default_factory=default_inboxes)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (channel account id, integrationThreadId) -> conversationsThreadId
    threads: dict[tuple[str, str], str] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> message (+ "statuses")
    idempotency: dict[tuple[str, str], str] = field(default_factory=dict)  # (account, key) -> message id
    lose_answers: int = 0  # publishes applied whose answer is lost (502), counted down
    transport: Transport = _post
    next_channel: int = 1000
    next_account: int = 12000
    next_thread: int = 8_800_000_000


def _invalid(message: str, field_name: str, code: str = "INVALID") -> Any:
    return ApiError(400, message, "VALIDATION_ERROR",
                    errors=[{"message": message, "in": field_name, "code": code}])


def _not_found(message: str) -> Any:
    return ApiError(404, message, "OBJECT_NOT_FOUND")


def _participants(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _invalid(f"{name} must be a non-empty array", name, "REQUIRED")
    for n, p in enumerate(value):
        ident = p.get("deliveryIdentifier") if isinstance(p, dict) else None
        if not isinstance(ident, dict) or not ident.get("value"):
            raise _invalid(f"{name}[{n}].deliveryIdentifier.value is required", f"{name}[{n}].deliveryIdentifier",
                           "REQUIRED")
        if ident.get("type") not in IDENTIFIER_TYPES:
            raise _invalid(f"{name}[{n}].deliveryIdentifier.type must be one of {', '.join(IDENTIFIER_TYPES)}",
                           f"{name}[{n}].deliveryIdentifier.type")
        if ident["type"] == PHONE and not (str(ident["value"]).startswith("+") and str(ident["value"])[1:].isdigit()):
            raise _invalid(f"{name}[{n}]: {ident['value']!r} is not a phone number in E.164 format",
                           f"{name}[{n}].deliveryIdentifier.value")
    return value


def register(app: Flask, state: Any, ok: Callable[..., Response], body: Callable[[], dict[str, Any]]) -> None:
    inbox: InboxState = state.inbox

    def channel_of(channel_id: str) -> dict[str, Any]:
        channel = inbox.channels.get(str(channel_id))
        if channel is None:
            raise _not_found(f"No custom channel with id {channel_id} for this app")
        return channel

    @app.get("/conversations/v3/conversations/inboxes")
    def list_inboxes() -> Response:
        rows = [i for i in inbox.inboxes if not i["archived"]]
        return ok({"total": len(rows), "results": rows})

    @app.post("/conversations/v3/custom-channels")
    @app.post("/conversations/custom-channels/v3")
    def create_channel() -> Response:
        if request.args.get("hapikey") != inbox.developer_api_key:
            raise ApiError(401, "The API key provided is invalid. View or manage your API key here: "
                                "https://app.hubspot.com/l/api-key/", "INVALID_AUTHENTICATION")
        if request.args.get("appId") != inbox.app_id:
            raise _invalid(f"appId {request.args.get('appId')!r} is not an app of this developer account", "appId")
        data = body()
        if not data.get("name"):
            raise _invalid("name is required", "name", "REQUIRED")
        if not isinstance(data.get("capabilities"), dict):
            raise _invalid("capabilities is required", "capabilities", "REQUIRED")
        with state.lock:
            inbox.next_channel += 1
            channel = {"id": str(inbox.next_channel), "name": data["name"], "capabilities": data["capabilities"],
                       "webhookUrl": data.get("webhookUrl") or "",
                       "channelAccountConnectionRedirectUrl": data.get("channelAccountConnectionRedirectUrl") or "",
                       "channelDescription": data.get("channelDescription") or "",
                       "channelLogoUrl": data.get("channelLogoUrl") or "", "createdAt": _iso()}
            inbox.channels[channel["id"]] = channel
        return ok(channel, 201)

    @app.get("/conversations/v3/custom-channels/<channel_id>")
    def read_channel(channel_id: str) -> Response:
        with state.lock:
            return ok(channel_of(channel_id))

    @app.get("/conversations/v3/custom-channels/<channel_id>/channel-accounts")
    def list_accounts(channel_id: str) -> Response:
        kinds = request.args.getlist("deliveryIdentifierType")
        values = request.args.getlist("deliveryIdentifierValue")
        with state.lock:
            channel_of(channel_id)
            rows = [a for a in inbox.accounts.values() if a["channelId"] == str(channel_id)
                    and (not kinds or (a.get("deliveryIdentifier") or {}).get("type") in kinds)
                    and (not values or (a.get("deliveryIdentifier") or {}).get("value") in values)
                    and (request.args.get("archived") == "true" or not a["archived"])]
            return ok({"total": len(rows), "results": rows})

    @app.post("/conversations/v3/custom-channels/<channel_id>/channel-accounts")
    def create_account(channel_id: str) -> Response:
        data = body()
        for name in ("inboxId", "name"):
            if not data.get(name):
                raise _invalid(f"{name} is required", name, "REQUIRED")
        if not isinstance(data.get("authorized"), bool):
            raise _invalid("authorized is required", "authorized", "REQUIRED")
        if data.get("deliveryIdentifier") is not None:
            _participants([{"deliveryIdentifier": data["deliveryIdentifier"]}], "deliveryIdentifier")
        with state.lock:
            channel_of(channel_id)
            if str(data["inboxId"]) not in {i["id"] for i in inbox.inboxes}:
                raise _invalid(f"Inbox {data['inboxId']} does not exist in this account", "inboxId")
            inbox.next_account += 1
            account = {"id": str(inbox.next_account), "channelId": str(channel_id), "inboxId": str(data["inboxId"]),
                       "name": data["name"], "authorized": data["authorized"], "active": True, "archived": False,
                       "createdAt": _iso(), "deliveryIdentifier": data.get("deliveryIdentifier")}
            inbox.accounts[account["id"]] = account
            state.counters["inbox:accounts_created"] += 1
        return ok(account, 201)

    @app.get("/conversations/v3/custom-channels/<channel_id>/channel-accounts/<account_id>")
    def read_account(channel_id: str, account_id: str) -> Response:
        with state.lock:
            account = inbox.accounts.get(account_id)
            if account is None or account["channelId"] != str(channel_id):
                raise _not_found(f"No channel account {account_id} on channel {channel_id}")
            return ok(account)

    @app.post("/conversations/v3/custom-channels/<channel_id>/messages")
    def publish(channel_id: str) -> Response:
        data = body()
        for name in ("text", "timestamp", "channelAccountId", "messageDirection"):
            if data.get(name) is None:
                raise _invalid(f"{name} is required", name, "REQUIRED")
        if not isinstance(data.get("attachments"), list):
            raise _invalid("attachments is required (an empty array for none)", "attachments", "REQUIRED")
        for n, a in enumerate(data["attachments"]):
            if not isinstance(a, dict) or a.get("type") != "FILE" or not a.get("fileId"):
                raise _invalid(f"attachments[{n}]: a FILE attachment needs the fileId of a file in the "
                               f"account's file manager", f"attachments[{n}].fileId", "REQUIRED")
        if data["messageDirection"] not in ("INCOMING", "OUTGOING"):
            raise _invalid("messageDirection must be INCOMING or OUTGOING", "messageDirection")
        senders = _participants(data.get("senders"), "senders")
        recipients = _participants(data.get("recipients"), "recipients")
        try:
            time.strptime(str(data["timestamp"])[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise _invalid(f"timestamp {data['timestamp']!r} is not an ISO 8601 date-time", "timestamp") from None
        with state.lock:
            channel_of(channel_id)
            account = inbox.accounts.get(str(data["channelAccountId"]))
            if account is None or account["channelId"] != str(channel_id):
                raise _invalid(f"Channel account {data['channelAccountId']} does not belong to channel {channel_id}",
                               "channelAccountId")
            if not account["authorized"]:
                raise ApiError(403, f"Channel account {account['id']} is not authorized", "FORBIDDEN")
            key = (account["id"], str(data.get("integrationIdempotencyId") or ""))
            if key[1] and key in inbox.idempotency:
                state.counters["inbox:repeated_idempotency"] += 1
                return ok(public(inbox.messages[inbox.idempotency[key]]), 201)
            integration_thread = str(data.get("integrationThreadId") or uuid.uuid4().hex)
            thread_key = (account["id"], integration_thread)
            if thread_key not in inbox.threads:
                inbox.next_thread += 1
                inbox.threads[thread_key] = str(inbox.next_thread)
            message = {
                "id": uuid.uuid4().hex, "type": "MESSAGE", "conversationsThreadId": inbox.threads[thread_key],
                "createdAt": _iso(), "updatedAt": _iso(), "createdBy": "I-" + inbox.app_id,
                "client": {"clientType": "INTEGRATION", "integrationAppId": int(inbox.app_id)},
                "senders": [{"name": s.get("name"), "deliveryIdentifier": s["deliveryIdentifier"]} for s in senders],
                "recipients": [{"name": r.get("name"), "deliveryIdentifier": r["deliveryIdentifier"]}
                               for r in recipients],
                "archived": False, "text": str(data["text"]), "richText": data.get("richText"),
                "attachments": data["attachments"], "truncationStatus": "NOT_TRUNCATED",
                "direction": data["messageDirection"], "channelId": str(channel_id), "channelAccountId": account["id"],
                "inReplyToId": data.get("inReplyToId"), "timestamp": data["timestamp"],
                "integrationThreadId": integration_thread, "statuses": [],
            }
            inbox.messages[message["id"]] = message
            if key[1]:
                inbox.idempotency[key] = message["id"]
            state.counters["inbox:published"] += 1
            if inbox.lose_answers > 0:
                inbox.lose_answers -= 1
                state.counters["inbox:lost_answers"] += 1
                raise ApiError(502, "Bad Gateway: the upstream service did not answer", "INTERNAL_ERROR")
        return ok(public(message), 201)

    @app.get("/conversations/v3/custom-channels/<channel_id>/messages/<message_id>")
    def read_message(channel_id: str, message_id: str) -> Response:
        with state.lock:
            message = inbox.messages.get(message_id)
            if message is None or message["channelId"] != str(channel_id):
                raise _not_found(f"No message {message_id} on channel {channel_id}")
            return ok(public(message))

    @app.patch("/conversations/v3/custom-channels/<channel_id>/messages/<message_id>")
    def update_message(channel_id: str, message_id: str) -> Response:
        data = body()
        if data.get("statusType") not in STATUS_TYPES:
            raise _invalid("statusType must be one of SENT, FAILED, READ", "statusType",
                           "REQUIRED" if "statusType" not in data else "INVALID")
        with state.lock:
            message = inbox.messages.get(message_id)
            if message is None or message["channelId"] != str(channel_id):
                raise _not_found(f"No message {message_id} on channel {channel_id}")
            status: dict[str, Any] = {"statusType": data["statusType"]}
            if data["statusType"] == "FAILED":
                status["failureDetails"] = {"errorMessage": data.get("errorMessage") or "",
                                            "errorMessageTokens": {}}
            message["statuses"].append(status)
            message["status"] = status
            message["updatedAt"] = _iso()
            state.counters["inbox:status_updates"] += 1
            return ok(public(message))

    @app.get(PAGE_PATH)
    def page() -> Response:
        with state.lock:
            rows = []
            for (account_id, integration_thread), thread in sorted(inbox.threads.items(), key=lambda kv: kv[1]):
                messages = [m for m in inbox.messages.values() if m["conversationsThreadId"] == thread]
                items = "".join(
                    f"<li class='{m['direction'].lower()}'><b>{html.escape(str(m['senders'][0].get('name') or ''))}"
                    f"</b>: {html.escape(m['text'])} <small>{html.escape(' '.join(s['statusType'] for s in m['statuses']))}"
                    f"</small></li>" for m in messages)
                account = inbox.accounts.get(account_id) or {}
                form = (f"<form method='post' action='{REPLY_PATH}'><input type='hidden' name='thread' "
                        f"value='{html.escape(integration_thread)}'><input name='text' size='60' "
                        "placeholder='Reply as an agent'><button>Send</button></form>")
                rows.append(f"<section><h2>Thread {thread} (integration thread {html.escape(integration_thread)}, "
                            f"{html.escape(str(account.get('name') or account_id))})</h2><ul>{items}</ul>{form}"
                            "</section>")
        page_html = ("<!doctype html><html><head><meta charset='utf-8'><title>HubSpot inbox (emulator)</title></head>"
                     f"<body><h1>HubSpot inbox (emulator): {len(rows)} threads</h1>{''.join(rows)}</body></html>")
        return Response(page_html, mimetype="text/html")


    @app.post(REPLY_PATH)
    def reply_form() -> Response:
        """An agent types in the thread on the page (hub demo): agent_reply()."""
        thread, text = request.form.get("thread", ""), request.form.get("text", "").strip()
        try:
            if not text:
                raise LookupError("nothing typed")
            InboxHandle(state).agent_reply(thread, text)
        except LookupError as exc:
            return Response(str(exc), 400, mimetype="text/plain")
        return Response(status=303, headers={"Location": PAGE_PATH})


def public(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if k not in ("statuses", "integrationThreadId", "timestamp")}
    return json.loads(json.dumps(out))


class InboxHandle:
    """What tests hold: threads and messages, and agents who reply in HubSpot."""

    def __init__(self, state: Any):
        self.state = state
        self.inbox: InboxState = state.inbox

    def add_channel(self, webhook_url: str = "", name: str = "WhatsApp (hub)") -> str:
        """A channel registered beforehand (as in the developer account)."""
        with self.state.lock:
            self.inbox.next_channel += 1
            channel_id = str(self.inbox.next_channel)
            self.inbox.channels[channel_id] = {"id": channel_id, "name": name, "capabilities": {},
                                               "webhookUrl": webhook_url, "createdAt": _iso()}
            return channel_id

    def set_webhook_url(self, channel_id: str, url: str) -> None:
        with self.state.lock:
            self.inbox.channels[str(channel_id)]["webhookUrl"] = url

    def messages_of(self, integration_thread_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [json.loads(json.dumps(m)) for m in self.inbox.messages.values()
                    if m["integrationThreadId"] == str(integration_thread_id)]

    def threads(self) -> dict[tuple[str, str], str]:
        with self.state.lock:
            return dict(self.inbox.threads)

    def stats(self) -> dict[str, int]:
        with self.state.lock:
            return {k[6:]: v for k, v in self.state.counters.items() if k.startswith("inbox:")}

    def agent_reply(self, integration_thread_id: str, text: str, agent: str = "Ivan Sales") -> dict[str, Any]:
        """An agent answers in the thread: an OUTGOING message, and the signed webhook."""
        with self.state.lock:
            incoming = [m for m in self.inbox.messages.values()
                        if m["integrationThreadId"] == str(integration_thread_id) and m["direction"] == "INCOMING"]
            if not incoming:
                raise LookupError(f"no thread with integrationThreadId {integration_thread_id}")
            last = incoming[-1]
            message = {**json.loads(json.dumps(last)), "id": uuid.uuid4().hex, "createdAt": _iso(), "updatedAt": _iso(),
                       "createdBy": "A-9002", "client": {"clientType": "HUBSPOT"}, "text": text,
                       "richText": f"<p>{html.escape(text)}</p>", "attachments": [], "direction": "OUTGOING",
                       "senders": [{"actorId": "A-9002", "name": agent,
                                    "deliveryIdentifier": last["recipients"][0]["deliveryIdentifier"]}],
                       "recipients": [{"name": last["senders"][0].get("name"),
                                       "deliveryIdentifier": last["senders"][0]["deliveryIdentifier"],
                                       "recipientField": "TO"}],
                       "statuses": []}
            self.inbox.messages[message["id"]] = message
            channel = self.inbox.channels[message["channelId"]]
            event = {"type": "OUTGOING_CHANNEL_MESSAGE_CREATED", "portalId": self.state.portal_id,
                     "channelId": message["channelId"], "channelAccountId": message["channelAccountId"],
                     "integrationThreadId": message["integrationThreadId"], "message": public(message)}
        raw = json.dumps(event).encode()
        out = self.post_hook(raw, url=channel["webhookUrl"])
        return {**out, "id": message["id"], "body": raw}

    def post_hook(self, raw: bytes, *, url: str | None = None, signature_value: str | None = None) -> dict[str, Any]:
        if url is None:
            channel_id = str(json.loads(raw)["channelId"])
            url = self.inbox.channels[channel_id]["webhookUrl"]
        headers = {"Content-Type": "application/json",
                   **signature.headers(self.state.options.client_secret, "POST", url, raw, int(time.time() * 1000))}
        if signature_value is not None:
            headers[signature.SIGNATURE_HEADER] = signature_value
        status, answer = self.inbox.transport(url, raw, headers)
        return {"status": status, "answer": answer}

    def statuses(self, message_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return json.loads(json.dumps(self.inbox.messages[message_id]["statuses"]))
