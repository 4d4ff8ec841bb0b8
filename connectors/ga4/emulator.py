"""A GA4 Measurement Protocol collection server, after Google's public docs
(developers.google.com/analytics/devguides/collection/protocol/ga4: sending-events,
validating-events, reference).

/mp/collect answers 204 whatever it gets; events with a wrong api_secret, an unknown
measurement_id or a malformed body are dropped without a word (kept in `dropped` for
tests). /debug/mp/collect answers {"validationMessages": [{fieldPath, description,
validationCode}]} and records nothing. `fail_next(n, status)` makes the next answers fail;
`answer_delay` holds each answer after the events are recorded (a slow network).
`reported(name)` counts as GA4's reports do: a purchase once per (client_id,
transaction_id) however often it arrived (support.google.com/analytics/answer/12313109).
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from connectors.emulator_server import Served

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
RESERVED_NAMES = {"ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "app_remove", "error",
                  "first_open", "first_visit", "session_start", "user_engagement", "in_app_purchase"}
MAX_EVENTS, MAX_PARAMS, MAX_VALUE_LENGTH = 25, 25, 100


@dataclass
class Ga4State:
    streams: dict[str, str] = field(default_factory=lambda: {"G-HUB0000001": "emulator-api-secret-1"})
    received: list[dict[str, Any]] = field(default_factory=list)  # {"measurement_id", "client_id", "event", ...}
    dropped: list[dict[str, Any]] = field(default_factory=list)  # {"reason", "body"}
    failures: list[int] = field(default_factory=list)
    answer_delay: float = 0.0  # seconds between recording events and answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int, status: int = 503) -> None:
        with self.lock:
            self.failures.extend([status] * n)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every event as it arrived, resends included."""
        with self.lock:
            return [r for r in self.received if name is None or r["event"]["name"] == name]

    def reported(self, name: str | None = None) -> list[dict[str, Any]]:
        """The events as GA4's reports count them: purchases deduplicated per user on transaction_id."""
        seen: set[tuple[str, str]] = set()
        out = []
        for r in self.events(name):
            transaction = (r["event"].get("params") or {}).get("transaction_id")
            if r["event"]["name"] == "purchase" and transaction is not None:
                if (r["client_id"], transaction) in seen:
                    continue
                seen.add((r["client_id"], transaction))
            out.append(r)
        return out


def validate(body: Any) -> list[dict[str, str]]:
    """The validation server's messages for a body (empty when valid)."""
    out: list[dict[str, str]] = []

    def msg(path: str, text: str, code: str) -> None:
        out.append({"fieldPath": path, "description": text, "validationCode": code})

    if not isinstance(body, dict):
        msg("", "Unable to parse Measurement Protocol JSON payload.", "VALUE_INVALID")
        return out
    if not isinstance(body.get("client_id"), str) or not body.get("client_id"):
        msg("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        msg("events", "Measurement requires at least one event.", "VALUE_REQUIRED")
        return out
    if len(events) > MAX_EVENTS:
        msg("events", f"A maximum of {MAX_EVENTS} events can be specified per measurement.", "EXCEEDED_MAX_ENTITIES")
    for i, event in enumerate(events):
        name = event.get("name") if isinstance(event, dict) else None
        if not isinstance(name, str) or not NAME.match(name):
            msg("events", f"Event at index: [{i}] has invalid name [{name}]. Names must start with an alphabetic "
                          "character.", "NAME_INVALID")
            continue
        if name.startswith(RESERVED_PREFIXES) or name in RESERVED_NAMES:
            msg("events", f"Event at index: [{i}] has name [{name}] which is reserved.", "NAME_RESERVED")
        params = event.get("params") or {}
        if not isinstance(params, dict):
            msg(f"events.params", f"Event at index: [{i}] has invalid params.", "VALUE_INVALID")
            continue
        if len(params) > MAX_PARAMS:
            msg("events.params", f"Event at index: [{i}] has more than {MAX_PARAMS} params.", "EXCEEDED_MAX_ENTITIES")
        for key, value in params.items():
            if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
                msg("events.params", f"Event param [{key}] has a value longer than {MAX_VALUE_LENGTH}.",
                    "VALUE_OUT_OF_BOUNDS")
        if "value" in params and not isinstance(params["value"], (int, float)):
            msg("events.params.value", f"Event at index: [{i}] has a non-numeric value.", "VALUE_INVALID")
        if "value" in params and not params.get("currency"):
            msg("events.params.currency", f"Event at index: [{i}] has a value but no currency.", "VALUE_REQUIRED")
        if name == "purchase" and not params.get("transaction_id"):
            msg("events.params.transaction_id", f"Event at index: [{i}] purchase requires transaction_id.",
                "VALUE_REQUIRED")
    return out


def make_app(state: Ga4State) -> Flask:
    app = Flask("ga4-emulator")

    def failure() -> Response | None:
        with state.lock:
            status = state.failures.pop(0) if state.failures else None
        return Response("", status=status) if status else None

    def parsed() -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            return None

    @app.post("/mp/collect")
    def collect() -> Response:
        failed = failure()
        if failed is not None:
            return failed
        body, mid, secret = parsed(), request.args.get("measurement_id", ""), request.args.get("api_secret", "")
        with state.lock:
            reason = None
            if state.streams.get(mid) is None:
                reason = f"unknown measurement_id {mid!r}"
            elif state.streams[mid] != secret:
                reason = "api_secret does not match the stream"
            elif validate(body):
                reason = "invalid payload"
            if reason:
                state.dropped.append({"reason": reason, "body": body})
            else:
                for event in body["events"]:
                    state.received.append({"measurement_id": mid, "client_id": body["client_id"],
                                           "user_id": body.get("user_id"),
                                           "timestamp_micros": body.get("timestamp_micros"), "event": event})
        if state.answer_delay:
            time.sleep(state.answer_delay)
        return Response("", status=204)

    @app.post("/debug/mp/collect")
    def debug_collect() -> Response:
        return Response(json.dumps({"validationMessages": validate(parsed())}), mimetype="application/json")

    return app


def serve(**state: Any) -> Served:
    emulator = Ga4State(**state)
    return Served(make_app(emulator), emulator)
