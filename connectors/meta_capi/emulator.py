"""The Graph API's dataset events edge for business messaging, after Meta's public docs
(developers.facebook.com/docs/marketing-api/conversions-api/business-messaging and the
Conversions API parameter reference).

POST /<version>/<dataset_id>/events?access_token=... checks the token (code 190,
OAuthException), each event's event_name (only business messaging's, subcode 2804066),
action_source, messaging_channel, user_data.whatsapp_business_account_id and ctwa_clid,
event_time (no older than 7 days), hashed ph; answers {"events_received", "messages",
"fbtrace_id"}. Events are kept once per (event_name, event_id), as Meta deduplicates.
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Flask, Response, request

from connectors.emulator_server import Served

ALLOWED = {"LeadSubmitted", "Purchase", "AddToCart", "InitiateCheckout", "ViewContent"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
SEVEN_DAYS = 7 * 24 * 3600


@dataclass
class MetaState:
    token: str = "EAAG-emulator-token"
    datasets: dict[str, str] = field(default_factory=lambda: {"1234567890123": "WhatsApp sales dataset"})
    events: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    answer_delay: float = 0.0  # seconds between storing events and answering (a slow network)
    clock: Callable[[], float] = time.time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int, status: int = 500, code: int = 2, message: str = "Service temporarily unavailable") -> None:
        with self.lock:
            self.failures.extend([(status, {"message": message, "type": "OAuthException", "code": code,
                                            "is_transient": True})] * n)

    def received(self, name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if name is None or e["event_name"] == name]


def error(status: int, message: str, code: int, subcode: int | None = None, type_: str = "OAuthException") -> Response:
    body: dict[str, Any] = {"message": message, "type": type_, "code": code, "fbtrace_id": uuid.uuid4().hex[:11]}
    if subcode is not None:
        body["error_subcode"] = subcode
        body["error_user_title"] = message
    return Response(json.dumps({"error": body}), status=status, mimetype="application/json")


def check_event(event: Any, i: int, now: float) -> Response | None:
    if not isinstance(event, dict):
        return error(400, f"Invalid parameter: data[{i}] is not an object", 100)
    if event.get("event_name") not in ALLOWED:
        return error(400, "Messaging Event Invalid Event Type", 100, 2804066)
    if event.get("action_source") != "business_messaging":
        return error(400, "Invalid parameter: action_source must be business_messaging for messaging events", 100)
    if event.get("messaging_channel") != "whatsapp":
        return error(400, "Invalid parameter: messaging_channel", 100)
    user = event.get("user_data") if isinstance(event.get("user_data"), dict) else {}
    if not user.get("whatsapp_business_account_id") or not user.get("ctwa_clid"):
        return error(400, "Messaging Event Missing Required Parameter: whatsapp_business_account_id and ctwa_clid", 100,
                     2804050)
    for key in ("ph", "external_id"):
        values = user.get(key)
        if values is not None and not (isinstance(values, list) and all(isinstance(v, str) and HEX64.match(v)
                                                                        for v in values)):
            return error(400, f"Invalid parameter: user_data.{key} must be SHA-256 hashed", 100)
    stamp = event.get("event_time")
    if not isinstance(stamp, int):
        return error(400, "Invalid parameter: event_time", 100)
    if stamp < now - SEVEN_DAYS:
        return error(400, "Invalid parameter: event_time is more than 7 days ago", 100, 2804003)
    if stamp > now + 60:
        return error(400, "Invalid parameter: event_time is in the future", 100, 2804004)
    custom = event.get("custom_data")
    if event["event_name"] == "Purchase" and not (isinstance(custom, dict) and custom.get("currency")
                                                   and isinstance(custom.get("value"), (int, float))):
        return error(400, "Invalid parameter: Purchase events need custom_data.currency and custom_data.value", 100)
    return None


def make_app(state: MetaState) -> Flask:
    app = Flask("meta-capi-emulator")

    def token_ok() -> bool:
        return (request.args.get("access_token") or "") == state.token

    @app.get("/<version>/<dataset_id>")
    def dataset(version: str, dataset_id: str) -> Response:
        if not token_ok():
            return error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if dataset_id not in state.datasets:
            return error(400, f"Unsupported get request. Object with ID '{dataset_id}' does not exist", 100, 33,
                         "GraphMethodException")
        return Response(json.dumps({"id": dataset_id, "name": state.datasets[dataset_id]}), mimetype="application/json")

    @app.post("/<version>/<dataset_id>/events")
    def events(version: str, dataset_id: str) -> Response:
        with state.lock:
            if state.failures:
                status, body = state.failures.pop(0)
                return Response(json.dumps({"error": body}), status=status, mimetype="application/json")
        if not token_ok():
            return error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if dataset_id not in state.datasets:
            return error(400, f"Unsupported post request. Object with ID '{dataset_id}' does not exist", 100, 33,
                         "GraphMethodException")
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return error(400, "Invalid parameter: the body is not JSON", 100)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data or len(data) > 1000:
            return error(400, "Invalid parameter: data must be a list of 1 to 1000 events", 100)
        now = state.clock()
        for i, event in enumerate(data):
            refused = check_event(event, i, now)
            if refused is not None:
                return refused
        with state.lock:
            seen = {(e["event_name"], e.get("event_id")) for e in state.events}
            for event in data:
                key = (event["event_name"], event.get("event_id"))
                if event.get("event_id") and key in seen:
                    state.duplicates += 1
                    continue
                seen.add(key)
                state.events.append({**event, "dataset_id": dataset_id,
                                     "test_event_code": body.get("test_event_code")})
        if state.answer_delay:
            time.sleep(state.answer_delay)
        return Response(json.dumps({"events_received": len(data), "messages": [],
                                    "fbtrace_id": uuid.uuid4().hex[:11]}), mimetype="application/json")

    return app


def serve(**state: Any) -> Served:
    emulator = MetaState(**state)
    return Served(make_app(emulator), emulator)
