"""Yandex Metrica's management API for offline conversions, after Yandex's public docs
(yandex.ru/dev/metrika: management/offline-conv, openapi/offline_conversions/upload_1,
findAll_1, openapi/goal).

POST /management/v1/counter/<id>/offline_conversions/upload?comment=&type=BASIC|CALLS|CHATS
takes multipart `file`, a UTF-8 CSV whose first line names the columns (ClientId, UserId,
Yclid or PurchaseId — one at least —, Target, DateTime in the past, Price, Currency; for
CHATS: DateTime, ChatPlatform, ChatUsername / ChatUserID / PhoneNumber, the ids) and
answers {"uploading": {id, create_time, source_quantity, line_quantity, comment, type,
client_id_type, status}}; GET .../uploadings lists them; GET .../goals lists the goals.
Errors are {"errors": [{"error_type", "message"}], "code", "message"}; a wrong token is 403
invalid_token. Metrica itself does not deduplicate: every upload's rows are kept.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask, Response, request

from connectors.emulator_server import Served

ID_COLUMNS = ("ClientId", "UserId", "Yclid", "PurchaseId")
TYPES = ("BASIC", "CALLS", "CHATS")


@dataclass
class MetricaState:
    token: str = "y0_emulator-metrica-token"
    counters: dict[int, list[str]] = field(default_factory=lambda: {44147844: ["whatsapp_chat", "deal_won", "deal_lost"]})
    uploads: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    lose_answers: int = 0  # uploads stored whose answer is then lost (a connection reset)
    answer_delay: float = 0.0  # seconds between storing an upload and answering (a slow network)
    clock: Callable[[], float] = time.time
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: itertools.count(1001))

    def fail_next(self, n: int, status: int = 503) -> None:
        with self.lock:
            self.failures.extend([status] * n)

    def rows(self, target: str | None = None) -> list[dict[str, str]]:
        with self.lock:
            return [{**row, "_type": u["type"]} for u in self.uploads for row in u["rows"]
                    if target is None or row.get("Target") == target]


def problem(status: int, error_type: str, message: str) -> Response:
    return Response(json.dumps({"errors": [{"error_type": error_type, "message": message}], "code": status,
                                "message": message}), status=status, mimetype="application/json")


CHAT_PLATFORMS = ("whatsapp", "telegram", "viber")
CHAT_PARTNER = ("ChatUsername", "ChatUserID", "PhoneNumber")


def parse_csv(text: str, now: float, type_: str = "BASIC") -> tuple[list[dict[str, str]], str | None]:
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    allowed = (*ID_COLUMNS, "DateTime", "ChatPlatform", *CHAT_PARTNER, "IsAnswered", "Tag") if type_ == "CHATS" \
        else (*ID_COLUMNS, "Target", "DateTime", "Price", "Currency")
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        return [], f"Unknown columns: {', '.join(unknown)}"
    if type_ == "CHATS":
        if "DateTime" not in columns or "ChatPlatform" not in columns or not any(c in columns for c in CHAT_PARTNER):
            return [], "Required columns DateTime, ChatPlatform and one of ChatUsername, ChatUserID, PhoneNumber"
    elif "Target" not in columns or "DateTime" not in columns:
        return [], "Required columns Target and DateTime are missing"
    if not any(c in columns for c in ID_COLUMNS):
        return [], "At least one of the columns ClientId, UserId, Yclid, PurchaseId is required"
    rows = list(reader)
    if not rows:
        return [], "The file has no data lines"
    for n, row in enumerate(rows, start=2):
        if type_ == "CHATS" and row.get("ChatPlatform") not in CHAT_PLATFORMS:
            return [], f"Line {n}: ChatPlatform must be one of {', '.join(CHAT_PLATFORMS)} (lowercase)"
        if type_ != "CHATS" and not any(row.get(c) for c in ID_COLUMNS):
            return [], f"Line {n}: no visitor identifier"
        for c in ("ClientId", "Yclid"):
            if row.get(c) and not re.fullmatch(r"\d{1,25}", row[c]):
                return [], f"Line {n}: {c} must be a number"
        if not re.fullmatch(r"\d{9,11}", row.get("DateTime") or ""):
            return [], f"Line {n}: DateTime must be a Unix timestamp"
        if int(row["DateTime"]) > now:
            return [], f"Line {n}: DateTime is in the future"
        if row.get("Price"):
            try:
                float(row["Price"])
            except ValueError:
                return [], f"Line {n}: Price must be a number"
            if not re.fullmatch(r"[A-Z]{3}", row.get("Currency") or ""):
                return [], f"Line {n}: Currency must be an ISO 4217 code"
    return rows, None


def make_app(state: MetricaState) -> Flask:
    app = Flask("metrica-emulator")

    def refused(counter_id: int) -> Response | None:
        if request.headers.get("Authorization", "") != f"OAuth {state.token}":
            return problem(403, "invalid_token", "Invalid oauth_token")
        if counter_id not in state.counters:
            return problem(404, "not_found", f"Counter {counter_id} not found")
        return None

    def public(upload: dict[str, Any]) -> dict[str, Any]:
        return {k: upload[k] for k in ("id", "create_time", "source_quantity", "line_quantity", "comment", "type",
                                       "client_id_type", "status")}

    @app.post("/management/v1/counter/<int:counter_id>/offline_conversions/upload")
    def upload(counter_id: int) -> Response:
        with state.lock:
            if state.failures:
                return problem(state.failures.pop(0), "backend_error", "Internal error, try later")
        denied = refused(counter_id)
        if denied is not None:
            return denied
        type_ = request.args.get("type", "BASIC")
        if type_ not in TYPES:
            return problem(400, "invalid_parameter", f"type must be one of {', '.join(TYPES)}")
        comment = request.args.get("comment", "")
        if len(comment) > 255:
            return problem(400, "invalid_parameter", "comment is longer than 255 characters")
        sent = request.files.get("file")
        if sent is None:
            return problem(400, "invalid_parameter", "multipart field 'file' is required")
        try:
            text = sent.read().decode("utf-8")
        except UnicodeDecodeError:
            return problem(400, "invalid_parameter", "the file must be UTF-8")
        rows, error = parse_csv(text, state.clock(), type_)
        if error:
            return problem(400, "invalid_parameter", error)
        id_column = next((c for c in ID_COLUMNS if rows and c in rows[0]), "ClientId")
        with state.lock:
            record = {"id": next(state._ids), "create_time": datetime.fromtimestamp(state.clock(), timezone.utc)
                      .strftime("%Y-%m-%dT%H:%M:%SZ"), "source_quantity": len(rows), "line_quantity": len(rows),
                      "comment": comment, "type": type_, "client_id_type": {"ClientId": "CLIENT_ID", "UserId": "USER_ID",
                                                                            "Yclid": "YCLID", "PurchaseId": "PURCHASE_ID"}[id_column],
                      "status": "UPLOADED", "rows": rows, "counter_id": counter_id}
            state.uploads.append(record)
            lose = state.lose_answers > 0
            state.lose_answers -= 1 if lose else 0
        if state.answer_delay:
            time.sleep(state.answer_delay)
        if lose:
            return problem(504, "backend_error", "Gateway timeout")  # stored, but the client never learns it
        return Response(json.dumps({"uploading": public(record)}), mimetype="application/json")

    @app.get("/management/v1/counter/<int:counter_id>/offline_conversions/uploadings")
    def uploadings(counter_id: int) -> Response:
        denied = refused(counter_id)
        if denied is not None:
            return denied
        with state.lock:
            mine = [public(u) for u in state.uploads if u["counter_id"] == counter_id]
        return Response(json.dumps({"uploadings": mine}), mimetype="application/json")

    @app.get("/management/v1/counter/<int:counter_id>/goals")
    def goals(counter_id: int) -> Response:
        denied = refused(counter_id)
        if denied is not None:
            return denied
        goals_ = [{"id": 300_000 + i, "name": name, "type": "action", "is_retargeting": 0,
                   "conditions": [{"type": "exact", "url": name}]} for i, name in enumerate(state.counters[counter_id])]
        return Response(json.dumps({"goals": goals_}), mimetype="application/json")

    return app


def serve(**state: Any) -> Served:
    emulator = MetricaState(**state)
    return Served(make_app(emulator), emulator)
