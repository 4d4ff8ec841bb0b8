"""Roistat's project API for orders, after Roistat's public docs (help.roistat.com/API:
about, requests, orders, set-statuses / add-orders of the CRM integration).

POST /api/v1/project/set-statuses?project=N [{id, name, type}] and
POST /api/v1/project/add-orders?project=N [{id, name, date_create, status, price,
roistat, phone, fields}], the key in the Api-key header (or ?key=). An order sent again
under its id replaces the stored one (Roistat updates it). Answers {"status": "success"},
or {"status": "error", "error": "authentication_failed" | "incorrect_request" |
"request_limit_error", "message"?}.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from connectors.emulator_server import Served

TYPES = ("progress", "paid", "canceled")


@dataclass
class RoistatState:
    key: str = "emulator-roistat-key-1"
    project: str = "12345"
    statuses: dict[str, dict[str, str]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # every order as received
    failures: list[int] = field(default_factory=list)
    answer_delay: float = 0.0  # seconds between storing orders and answering (a slow network)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int, status: int = 500) -> None:
        with self.lock:
            self.failures.extend([status] * n)


def answer(http_status: int, **body: Any) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=http_status, mimetype="application/json")


def make_app(state: RoistatState) -> Flask:
    app = Flask("roistat-emulator")

    def refused() -> Response | None:
        with state.lock:
            if state.failures:
                status = state.failures.pop(0)
                return answer(status, status="error", error="request_limit_error" if status == 429 else "internal_error")
        key = request.headers.get("Api-key") or request.args.get("key") or ""
        if key != state.key or request.args.get("project") != state.project:
            return answer(401, status="error", error="authentication_failed")
        return None

    def items() -> list[Any] | None:
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return None
        return body if isinstance(body, list) else None

    @app.post("/api/v1/project/set-statuses")
    def set_statuses() -> Response:
        denied = refused()
        if denied is not None:
            return denied
        given = items()
        if not given or any(not isinstance(s, dict) or not s.get("id") or not s.get("name") or s.get("type") not in TYPES
                            for s in given):
            return answer(400, status="error", error="incorrect_request",
                          message="a list of statuses {id, name, type: progress|paid|canceled} is expected")
        with state.lock:
            state.statuses = {str(s["id"]): s for s in given}
        return answer(200, status="success")

    @app.post("/api/v1/project/add-orders")
    def add_orders() -> Response:
        denied = refused()
        if denied is not None:
            return denied
        given = items()
        if not given:
            return answer(400, status="error", error="incorrect_request", message="a list of orders is expected")
        for n, order in enumerate(given):
            if not isinstance(order, dict) or not order.get("id") or not order.get("date_create"):
                return answer(400, status="error", error="incorrect_request", message=f"order {n}: id and date_create are required")
            if order.get("status") is not None and state.statuses and str(order["status"]) not in state.statuses:
                return answer(400, status="error", error="incorrect_request",
                              message=f"order {order['id']}: unknown status {order['status']!r}; send it with set-statuses")
            if order.get("price") not in (None, ""):
                try:
                    float(order["price"])
                except (TypeError, ValueError):
                    return answer(400, status="error", error="incorrect_request", message=f"order {order['id']}: price")
        with state.lock:
            for order in given:
                state.orders[str(order["id"])] = dict(order)
                state.history.append(dict(order))
        if state.answer_delay:
            time.sleep(state.answer_delay)
        return answer(200, status="success")

    return app


def serve(**state: Any) -> Served:
    emulator = RoistatState(**state)
    return Served(make_app(emulator), emulator)
