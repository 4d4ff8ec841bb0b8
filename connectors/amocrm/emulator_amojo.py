"""A local amojo (amoCRM's Chats API) for tests and `hub demo`.

The documented endpoints (README.md, "Chats API (amojo)"), each checking Date (15
minutes), Content-Type, Content-MD5 and X-Signature exactly as amoCRM documents them:
connect / disconnect a channel, new_message (chat and message created once per
conversation_id and msgid), delivery_status, a chat's history; amoCRM's documented
"not more than 7 requests per second" applied to amojo too (429 beyond it; amojo's own
limit is not documented apart, so the account's is assumed). A manager's reply
(`manager_reply()`) is posted to the channel's hook URL as webhook v2, signed
HMAC-SHA1(secret, body). `GET /` lists chats and messages as HTML, each chat with a form
a manager replies through (POST /chats/reply, for `hub demo`).

    with serve_amojo(hook_url=...) as amojo:
        amojo.base_url, amojo.channel_id, amojo.secret, amojo.account_id
"""
from __future__ import annotations

import collections
import hmac
import random
import html
import json
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import requests
from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

from connectors.amocrm.amojo import content_md5, encode, hook_signature, request_signature
from connectors.amocrm.emulator import RateGate

REPLY_PATH = "/chats/reply"  # the page's reply form (hub demo)
RATE_LIMIT = 7.0  # requests a second (https://developers.kommo.com/docs/limitations)
CHANNEL_ID = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41"
CHANNEL_SECRET = "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
ACCOUNT_ID = "af9945ff-1490-4cad-807d-945c15d88bec"  # the account's amojo_id
BOT_ID = "f1910c7f-b1e0-4184-bd09-c7def2a9109a"
TYPES = {"text", "contact", "file", "video", "picture", "voice", "audio", "sticker", "location"}
NEEDS_FILE = {"file", "video", "picture"}


def error(status: int, message: str) -> Response:
    # amojo's error bodies are not documented beyond the status codes (assumed shape).
    return Response(json.dumps({"error": message}), status=status, mimetype="application/json")


def ok(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


class AmojoEmulator:
    def __init__(self, *, channel_id: str = CHANNEL_ID, secret: str = CHANNEL_SECRET,
                 account_id: str = ACCOUNT_ID, hook_url: str = "", clock: Callable[[], float] = time.time,
                 rate_limit: float = RATE_LIMIT,
                 transport: Callable[[str, bytes, dict[str, str]], tuple[int, str]] | None = None):
        self.channel_id = channel_id
        self.secret = secret
        self.account_id = account_id
        self.hook_url = hook_url
        self.transport = transport  # (url, body, headers) -> (status, text); default: an HTTP POST
        self.lose_answers = 0  # the next N new_message answers are lost (502) after the message is kept
        self.fail_rate = 0.0  # share of API requests answered 503 before anything is done
        self.answer_delay = 0.0  # seconds a new_message answer waits after the message is kept
        self.rng = random.Random(0)
        self.clock = clock
        # No block after repeated refusals: that is documented for the account's API only.
        self.gate = RateGate(rate_limit, block_after=1 << 30, block_seconds=0.0, clock=clock)
        self.connected: dict[str, dict[str, Any]] = {}  # scope_id -> connection
        self.chats: dict[str, dict[str, Any]] = {}  # (scope) conversation_id -> chat
        self.messages: dict[str, dict[str, Any]] = {}  # amojo message id -> message
        self.by_msgid: dict[tuple[str, str], str] = {}  # (scope, integration msgid) -> amojo id
        self.hook_log: list[dict[str, Any]] = []
        self.stats: collections.Counter[str] = collections.Counter()
        self.lock = threading.RLock()
        self.app = self._build_app()

    @property
    def scope_id(self) -> str:
        return f"{self.channel_id}_{self.account_id}"

    # -- test controls ----------------------------------------------------------------------
    def disconnect(self) -> None:
        """What uninstalling the integration does: the channel is off for the account."""
        with self.lock:
            self.connected.pop(self.scope_id, None)

    def chat_of(self, conversation_id: str) -> dict[str, Any] | None:
        return self.chats.get(conversation_id)

    def messages_of(self, conversation_id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["conversation_id"] == conversation_id]

    def manager_reply(self, conversation_id: str, text: str, *, user_name: str = "Ivan Sales",
                      msg_type: str = "text", media: str = "") -> dict[str, Any]:
        """A manager answers in the chat: the message is kept and webhook v2 is POSTed to
        the hook URL (signed). Returns {"id", "status", "body"} of the hook call."""
        with self.lock:
            chat = self.chats[conversation_id]
            now = self.clock()
            message = {"id": str(uuid.uuid4()), "msgid": None, "conversation_id": conversation_id,
                       "direction": "out", "type": msg_type, "text": text, "media": media,
                       "sender": user_name, "timestamp": int(now), "statuses": []}
            self.messages[message["id"]] = message
        body = {
            "account_id": self.account_id,
            "time": int(now),
            "message": {
                "receiver": {"id": chat["user"]["id"], "phone": chat["user"].get("phone", ""),
                             "name": chat["user"]["name"], "client_id": chat["user"]["client_id"]},
                "sender": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, user_name)), "name": user_name},
                "conversation": {"id": chat["id"], "client_id": conversation_id},
                "timestamp": int(now), "msec_timestamp": int(now * 1000),
                "message": {"id": message["id"], "type": msg_type, "text": text, "markup": None, "tag": "",
                            "media": media, "thumbnail": "", "file_name": "", "file_size": 0},
            },
        }
        raw = encode(body)
        return {"id": message["id"], **self.post_hook(raw)}

    def post_hook(self, raw: bytes, signature: str | None = None) -> dict[str, Any]:
        """POST a hook body (again: amoCRM does not repeat hooks, but a proxy may)."""
        url = self.hook_url.replace(":scope_id", self.scope_id).replace("{scope_id}", self.scope_id)
        headers = {"Content-Type": "application/json", "X-Signature": signature or hook_signature(self.secret, raw)}
        try:
            if self.transport is not None:
                status, text = self.transport(url, raw, headers)
                entry = {"url": url, "status": status, "body": raw, "answer": text}
            else:
                answer = requests.post(url, data=raw, headers=headers, timeout=10)
                entry = {"url": url, "status": answer.status_code, "body": raw, "answer": answer.text}
        except requests.RequestException as exc:
            entry = {"url": url, "status": None, "body": raw, "answer": str(exc)}
        self.hook_log.append(entry)
        return {"status": entry["status"], "body": raw, "answer": entry["answer"]}

    # -- checking requests ----------------------------------------------------------------------
    def _refusal(self) -> Response | None:
        """Date, Content-Type, Content-MD5, X-Signature as documented; None when all good."""
        self.stats["requests"] += 1
        date = request.headers.get("Date", "")
        ctype = request.headers.get("Content-Type", "")
        md5 = request.headers.get("Content-MD5", "")
        given = request.headers.get("X-Signature", "")
        body = request.get_data(cache=True)
        try:
            sent_at = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            self.stats["refused"] += 1
            return error(403, "Date header is missing or not RFC 2822")
        if abs(self.clock() - sent_at) > 15 * 60:
            self.stats["refused"] += 1
            return error(403, "request signature expired (Date older than 15 minutes)")
        if ctype.split(";")[0].strip() != "application/json":
            self.stats["refused"] += 1
            return error(403, "Content-Type must be application/json")
        if md5 != content_md5(body):
            self.stats["refused"] += 1
            return error(403, "Content-MD5 does not match the body")
        expected = request_signature(self.secret, request.method, md5, ctype, date, request.path)
        if not hmac.compare_digest(expected, given):
            self.stats["refused"] += 1
            return error(403, "invalid signature")
        return None

    # -- the API --------------------------------------------------------------------------------
    def _build_app(self) -> Flask:
        app = Flask("amojo-emulator")
        emu = self

        @app.before_request
        def check() -> Response | None:
            if (request.method == "GET" and request.path in ("/", "/chats")) or request.path == REPLY_PATH:
                return None  # the demo's page and its reply form, not the API
            if emu.gate.admit() != "ok":
                emu.stats["requests"] += 1
                emu.stats["rate_limited"] += 1
                answer = error(429, "Too Many Requests")
                answer.headers["Retry-After"] = "1"
                return answer
            refused = emu._refusal()
            if refused is None and emu.fail_rate and emu.rng.random() < emu.fail_rate:
                emu.stats["injected_5xx"] += 1
                return error(503, "Service Unavailable")
            return refused

        @app.get("/")
        @app.get("/chats")
        def page() -> Response:
            return Response(emu.render(), mimetype="text/html")

        @app.post(REPLY_PATH)
        def reply_form() -> Response:
            """A manager types in the chat on the page (hub demo): manager_reply()."""
            conversation, text = request.form.get("conversation", ""), request.form.get("text", "").strip()
            if conversation not in emu.chats or not text:
                return Response("no such chat, or nothing typed", 400, mimetype="text/plain")
            emu.manager_reply(conversation, text)
            return Response(status=303, headers={"Location": "/chats"})

        @app.post("/v2/origin/custom/<channel_id>/connect")
        def connect(channel_id: str) -> Response:
            body = request.get_json(silent=True) or {}
            if channel_id != emu.channel_id:
                return error(404, "channel not found")
            if body.get("account_id") != emu.account_id or body.get("hook_api_version") not in ("v1", "v2"):
                return error(400, "account_id or hook_api_version is invalid")
            with emu.lock:
                emu.stats["connects"] += 1
                emu.connected[emu.scope_id] = {"title": body.get("title") or "Channel",
                                               "hook_api_version": body["hook_api_version"]}
            return ok({"account_id": emu.account_id, "scope_id": emu.scope_id,
                       "title": body.get("title") or "Channel", "hook_api_version": body["hook_api_version"],
                       "is_time_window_disabled": False})

        @app.delete("/v2/origin/custom/<channel_id>/disconnect")
        def disconnect(channel_id: str) -> Response:
            if channel_id != emu.channel_id:
                return error(404, "channel not found")
            emu.disconnect()
            return Response(status=200)

        @app.post("/v2/origin/custom/<scope_id>")
        def new_message(scope_id: str) -> Response:
            if scope_id not in emu.connected:
                return error(404, "scope not found: the channel is not connected to the account")
            body = request.get_json(silent=True) or {}
            problem = _message_problem(body)
            if problem:
                return error(400, problem)
            answer = emu._store(scope_id, body["payload"])
            if emu.answer_delay:
                time.sleep(emu.answer_delay)
            with emu.lock:
                if emu.lose_answers > 0:
                    emu.lose_answers -= 1
                    emu.stats["lost_answers"] += 1
                    return error(502, "Bad Gateway")
            return ok(answer)

        @app.post("/v2/origin/custom/<scope_id>/<msgid>/delivery_status")
        def delivery_status(scope_id: str, msgid: str) -> Response:
            if scope_id not in emu.connected:
                return error(404, "scope not found: the channel is not connected to the account")
            body = request.get_json(silent=True) or {}
            message = emu.messages.get(msgid)
            if message is None:
                return error(404, "message not found")
            status = body.get("delivery_status", body.get("status_code"))
            if body.get("msgid") not in (None, msgid) or status not in (1, 2, -1):
                return error(400, "msgid must match the path; delivery_status is 1, 2 or -1")
            if status == -1 and not (body.get("error_code") and body.get("error")):
                return error(400, "error_code and error are required with delivery_status -1")
            with emu.lock:
                emu.stats["delivery_statuses"] += 1
                message["statuses"].append({"status": status, "error_code": body.get("error_code"),
                                            "error": body.get("error")})
            return Response(status=200)

        @app.get("/v2/origin/custom/<scope_id>/chats/<conversation_id>/history")
        def history(scope_id: str, conversation_id: str) -> Response:
            if conversation_id not in emu.chats:
                return Response(status=204)
            items = [{"timestamp": m["timestamp"], "message": {"id": m["id"], "client_id": m["msgid"] or "",
                                                              "type": m["type"], "text": m["text"],
                                                              "media": m["media"]}}
                     for m in emu.messages_of(conversation_id)]
            return ok({"messages": list(reversed(items))})

        return app

    def _store(self, scope_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            conv = payload["conversation_id"]
            sender = payload["sender"]
            chat = self.chats.get(conv)
            if chat is None:  # the chat's customer: the receiver of an outgoing message, else the sender
                person = payload.get("receiver") or sender
                chat = {"id": str(uuid.uuid4()), "conversation_id": conv, "created_at": self.clock(),
                        "user": {"id": str(uuid.uuid4()), "client_id": person["id"], "name": person.get("name") or "",
                                 "phone": str((person.get("profile") or {}).get("phone") or "")}}
                self.chats[conv] = chat
                self.stats["chats"] += 1
            key = (scope_id, payload["msgid"])
            existing = self.by_msgid.get(key)
            if existing is None:  # a msgid names one message: posting it again changes nothing (assumed)
                message = payload["message"]
                stored = {"id": str(uuid.uuid4()), "msgid": payload["msgid"], "conversation_id": conv,
                          "direction": "in" if "receiver" not in payload else "out",
                          "type": message["type"], "text": message.get("text") or "",
                          "media": message.get("media") or "", "file_name": message.get("file_name") or "",
                          "sender": sender["name"], "timestamp": payload["timestamp"],
                          "reply_to": payload.get("reply_to"), "silent": bool(payload.get("silent")),
                          "statuses": []}
                self.messages[stored["id"]] = stored
                self.by_msgid[key] = existing = stored["id"]
                self.stats["messages"] += 1
            else:
                self.stats["repeated_msgid"] += 1
            return {"new_message": {"conversation_id": conv, "sender_id": chat["user"]["id"],
                                    "receiver_id": BOT_ID, "msgid": existing, "ref_id": payload["msgid"]}}

    def render(self) -> str:
        rows = []
        for conv, chat in sorted(self.chats.items(), key=lambda kv: kv[1]["created_at"]):
            lines = []
            for m in self.messages_of(conv):
                status = {1: "delivered", 2: "read", -1: "error"}.get(
                    m["statuses"][-1]["status"] if m["statuses"] else 0, "sent")
                err = m["statuses"][-1].get("error") if m["statuses"] and m["statuses"][-1]["status"] == -1 else ""
                media = f' <a href="{html.escape(m["media"])}">{html.escape(m["type"])}</a>' if m["media"] else ""
                lines.append(f'<li class="{m["direction"]}"><b>{html.escape(m["sender"])}</b>: '
                             f'{html.escape(m["text"])}{media} <small>[{status}] {html.escape(err or "")}</small></li>')
            form = (f'<form method="post" action="{REPLY_PATH}"><input type="hidden" name="conversation" '
                    f'value="{html.escape(conv)}"><input name="text" size="60" placeholder="Reply as a manager">'
                    '<button>Send</button></form>')
            rows.append(f'<section><h2>{html.escape(chat["user"]["name"])} {html.escape(chat["user"]["phone"])}'
                        f' <small>{html.escape(conv)}</small></h2><ul>{"".join(lines)}</ul>{form}</section>')
        return ("<!doctype html><html><head><meta charset='utf-8'><title>amojo emulator: chats</title></head>"
                f"<body><h1>Chats ({len(self.chats)})</h1>{''.join(rows) or '<p>No chats yet.</p>'}</body></html>")


def _message_problem(body: dict[str, Any]) -> str | None:
    if body.get("event_type") not in ("new_message", "edit_message"):
        return "event_type must be new_message or edit_message"
    p = body.get("payload")
    if not isinstance(p, dict):
        return "payload is required"
    for key in ("msgid", "conversation_id"):
        if not isinstance(p.get(key), str) or not p[key]:
            return f"payload.{key} is required (string)"
    if not isinstance(p.get("timestamp"), int):
        return "payload.timestamp is required (int)"
    sender = p.get("sender")
    if not isinstance(sender, dict) or not sender.get("id") or not sender.get("name"):
        return "payload.sender.id and payload.sender.name are required"
    message = p.get("message")
    if not isinstance(message, dict) or message.get("type") not in TYPES:
        return "payload.message.type must be one of " + ", ".join(sorted(TYPES))
    if message["type"] == "text" and not message.get("text"):
        return "payload.message.text is required for text"
    if message["type"] in NEEDS_FILE and not (message.get("media") and message.get("file_name")
                                              and isinstance(message.get("file_size"), int)):
        return "payload.message.media, file_name and file_size are required for " + message["type"]
    return None


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class ServedAmojo:
    def __init__(self, emulator: AmojoEmulator):
        self.emulator = emulator
        self._server = make_server("127.0.0.1", 0, emulator.app, threaded=True, request_handler=_Quiet)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> "ServedAmojo":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emulator, name)


def serve_amojo(**options: Any) -> ServedAmojo:
    return ServedAmojo(AmojoEmulator(**options))
