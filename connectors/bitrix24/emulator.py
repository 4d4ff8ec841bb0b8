"""A local Bitrix24 portal for tests, benchmarks and demos (Flask on 127.0.0.1:0).

It follows the public REST documentation (see README.md): the /rest/<user>/<code>/<method>
webhook and /rest/<method>?auth= OAuth entry points, JSON or form bodies, the envelope
{"result", "time", "total", "next"}, 50-row pages, `batch` with $result[...] references
resolved the way the portal does (an unresolved path substitutes what it reached),
result_error per command, the leaky bucket (counter +1 per request, drained by `rate`
a second, 503 QUERY_LIMIT_EXCEEDED past `burst`), 429 OPERATION_TIME_LIMIT per method,
expired_token and the OAuth refresh endpoint, and outbound events (ONCRMDEALUPDATE, ...)
POSTed form-encoded with auth[application_token]. Chaos knobs inject 5xx, limit bursts,
slow answers and per-command failures; random 5xx (before the work, or after it with the
answer lost) only when a test sets their rates, drawn from a generator seeded with 0 so
every run is the same. It counts requests and refusals.
"""
from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit

import requests
from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

from connectors.bitrix24 import emulator_openlines, phpquery
from connectors.bitrix24.emulator_answers import Answer, ApiError

PAGE = 50
MAX_BATCH = 50
WEBHOOK_PATH = re.compile(r"^(\d+)/([A-Za-z0-9]+)/(.+?)(?:\.(json|xml))?/?$")
METHOD_PATH = re.compile(r"^(.+?)(?:\.(json|xml))?/?$")
REF = re.compile(r"\$result((?:\[[^\]]+\])+)")

DEAL_STAGES = {
    "DEAL_STAGE": [("NEW", "New", "P"), ("PREPARATION", "Preparing documents", "P"),
                   ("PREPAYMENT_INVOICE", "Invoice", "P"), ("EXECUTING", "In progress", "P"),
                   ("FINAL_INVOICE", "Final invoice", "P"), ("WON", "Deal won", "S"),
                   ("LOSE", "Deal lost", "F"), ("APOLOGY", "Analyze failure", "F")],
    "DEAL_STAGE_1": [("C1:NEW", "New", "P"), ("C1:PREPARATION", "Preparing", "P"),
                     ("C1:EXECUTING", "Shipping", "P"), ("C1:WON", "Shipped", "S"), ("C1:LOSE", "Lost", "F")],
}
LEAD_STATUSES = [("NEW", "Unassigned", "P"), ("IN_PROCESS", "In progress", "P"),
                 ("PROCESSED", "Processed", "P"), ("CONVERTED", "Good lead", "S"), ("JUNK", "Junk lead", "F")]
SOURCES = ["CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION", "TRADE_SHOW",
           "WEBFORM", "CALLBACK", "RC_GENERATOR", "STORE", "OTHER"]


@dataclass
class CommandFault:
    method: str
    remaining: int
    code: str
    description: str
    match: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class Chaos:
    fail_next: list[tuple[int, str]] = field(default_factory=list)  # (status, error code)
    limit_next: int = 0  # answer the next n requests with QUERY_LIMIT_EXCEEDED
    slow_next: list[float] = field(default_factory=list)  # answer late (after doing the work)
    faults: list[CommandFault] = field(default_factory=list)
    blocked: dict[str, float] = field(default_factory=dict)  # method -> until (epoch)
    # Random faults, off unless set, from a seeded generator so a test sees the same run
    # every time: a share of requests answered 500 before anything is done, and a share
    # answered 502 after the work is done (a proxy that lost the answer).
    fail_rate: float = 0.0
    lost_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def roll(self) -> str:
        if not (self.fail_rate or self.lost_rate):
            return ""
        x = self.rng.random()
        return "fail" if x < self.fail_rate else "lost" if x < self.fail_rate + self.lost_rate else ""


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).astimezone().isoformat(timespec="seconds")


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise ApiError("", f"Parameter '{name}' is not an integer")
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ApiError("", f"Parameter '{name}' is not an integer")
    return int(text)


def _matches(row: dict[str, Any], flt: dict[str, Any]) -> bool:
    for raw_key, wanted in (flt or {}).items():
        m = re.match(r"^(>=|<=|!=|=|!|@|>|<)?(.+)$", str(raw_key))
        op, key = (m.group(1) or "="), m.group(2)
        value = row.get(key)
        if key == "PHONE" and isinstance(value, list):
            values = [_digits(p.get("VALUE")) for p in value]
            ok = _digits(wanted) in values
        elif isinstance(wanted, (list, dict)):
            options = [str(w) for w in (wanted.values() if isinstance(wanted, dict) else wanted)]
            ok = str(value) in options
            if op in ("!", "!="):
                ok = not ok
        elif op in ("!", "!="):
            ok = str(value) != str(wanted)
        elif op in (">", "<", ">=", "<="):
            a, b = str(value), str(wanted)
            if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
                a, b = int(a), int(b)  # type: ignore[assignment]
            ok = {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
        else:
            ok = str(value if value is not None else "") == str(wanted)
        if not ok:
            return False
    return True


class Portal:
    """The state of one Bitrix24 account and the REST methods over it."""

    def __init__(self, *, rate: float = 2.0, burst: int = 50, webhook_user: int = 1,
                 webhook_code: str | None = None, application_token: str | None = None,
                 operating_window: float = 600.0, clock: Callable[[], float] = time.time):
        self.lock = threading.RLock()
        self.clock = clock
        self.rate, self.burst = float(rate), float(burst)
        self.counter, self.counter_at = 0.0, clock()
        self.webhook_user = webhook_user
        self.webhook_code = webhook_code or secrets.token_hex(8)
        self.application_token = application_token or secrets.token_hex(16)
        self.member_id = secrets.token_hex(16)
        self.client_id = "local.emulator." + secrets.token_hex(4)
        self.client_secret = secrets.token_urlsafe(24)
        self.access_token = secrets.token_hex(16)
        self.refresh_token = secrets.token_hex(16)
        self.expired_tokens: set[str] = set()
        # The app's redirect URL (its settings in the portal) and the codes /oauth/authorize/
        # hands out: single use, valid 30 seconds.
        self.redirect_uri = "https://hub.example/oauth/bitrix24"
        self.approve = True
        self.codes: dict[str, dict[str, Any]] = {}
        self.operating_window = operating_window
        self.base_url = ""
        self.ids = {"contact": 0, "deal": 0, "lead": 0, "comment": 0, "handler": 0, "activity": 0}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        # a deal's (lead's) contacts beyond CONTACT_ID, once crm.<deal|lead>.contact.* touched them
        self.bindings: dict[tuple[str, int], list[int]] = {}
        self.activities: dict[int, dict[str, Any]] = {}  # crm.activity.todo.add's "universal" activities
        self.users = [
            {"ID": "1", "ACTIVE": True, "NAME": "Anna", "LAST_NAME": "Admin", "EMAIL": "admin@example.com"},
            {"ID": "5", "ACTIVE": True, "NAME": "Olga", "LAST_NAME": "Sales", "EMAIL": "olga@example.com"},
            {"ID": "7", "ACTIVE": True, "NAME": "Ivan", "LAST_NAME": "Sales", "EMAIL": "ivan@example.com"},
        ]
        self.categories = [{"id": 0, "name": "General", "sort": 100, "entityTypeId": 2, "isDefault": "Y"},
                           {"id": 1, "name": "Wholesale", "sort": 200, "entityTypeId": 2, "isDefault": "N"}]
        self.handlers: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.chaos = Chaos()
        self.ol = emulator_openlines.OpenLinesState()  # Open Lines: emulator_openlines.py
        self.post = requests.post  # how the queue server POSTs events (tests may route them elsewhere)
        self.stats: dict[str, Any] = {"requests": 0, "rate_limited": 0, "batches": 0, "commands": 0,
                                      "injected": 0, "lost": 0, "methods": {}, "events_sent": 0}

    # -- limits --------------------------------------------------------------------------
    def _admit(self) -> bool:
        now = self.clock()
        self.counter = max(0.0, self.counter - (now - self.counter_at) * self.rate)
        self.counter_at = now
        if self.counter + 1 > self.burst:
            return False
        self.counter += 1
        return True

    def _time_block(self, start: float, method: str) -> dict[str, Any]:
        finish = self.clock()
        return {"start": start, "finish": finish, "duration": finish - start, "processing": finish - start,
                "date_start": _now_iso(start), "date_finish": _now_iso(finish),
                "operating_reset_at": int(self.chaos.blocked.get(method, start + self.operating_window)),
                "operating": 0}

    def _check_blocked(self, method: str) -> None:
        until = self.chaos.blocked.get(method)
        if until is not None:
            if until > self.clock():
                raise ApiError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)
            del self.chaos.blocked[method]

    # -- entry point ---------------------------------------------------------------------
    def handle(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """-> (status, body, delay seconds before answering)."""
        start = self.clock()
        with self.lock:
            self.stats["requests"] += 1
            delay = self.chaos.slow_next.pop(0) if self.chaos.slow_next else 0.0
            try:
                method = self._authenticate(path, params)
                fault = self.chaos.roll()
                if self.chaos.fail_next or fault == "fail":
                    status, code = (self.chaos.fail_next.pop(0) if self.chaos.fail_next
                                    else (500, "INTERNAL_SERVER_ERROR"))
                    self.stats["injected"] += 1
                    raise ApiError(code, "Injected failure", status)
                if self.chaos.limit_next > 0 or not self._admit():
                    if self.chaos.limit_next > 0:
                        self.chaos.limit_next -= 1
                        self.stats["injected"] += 1
                    self.stats["rate_limited"] += 1
                    raise ApiError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
                self._check_blocked(method)
                self.stats["methods"][method] = self.stats["methods"].get(method, 0) + 1
                answer = self._batch(params) if method == "batch" else self.call(method, params)
                if fault == "lost":
                    self.stats["injected"] += 1
                    self.stats["lost"] += 1
                    raise ApiError("", "Bad Gateway", 502)
            except ApiError as exc:
                return exc.status, {"error": exc.code, "error_description": exc.description}, delay
            body: dict[str, Any] = {"result": answer.result, "time": self._time_block(start, method)}
            if answer.total is not None:
                body["total"] = answer.total
            if answer.next is not None:
                body["next"] = answer.next
            return 200, body, delay

    def _authenticate(self, path: str, params: dict[str, Any]) -> str:
        m = WEBHOOK_PATH.match(path)
        if m:
            user, code, method = int(m.group(1)), m.group(2), m.group(3)
            if user != self.webhook_user or not secrets.compare_digest(code, self.webhook_code):
                raise ApiError("INVALID_CREDENTIALS", "Invalid request credentials", 401)
            self._auth_kind = "webhook"
            return method.lower()
        m = METHOD_PATH.match(path)
        method = (m.group(1) if m else path).lower()
        token = str(params.pop("auth", "") or "")
        if not token:
            raise ApiError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        if token in self.expired_tokens:
            raise ApiError("expired_token", "The access token provided has expired.", 401)
        if not secrets.compare_digest(token, self.access_token):
            raise ApiError("invalid_token", "The access token provided is invalid.", 401)
        self._auth_kind = "oauth"
        return method

    # -- batch ---------------------------------------------------------------------------
    def _resolve(self, value: Any, results: dict[str, Any]) -> Any:
        """The portal's $result substitution: walk the path as far as it goes."""
        if isinstance(value, dict):
            return {k: self._resolve(v, results) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, results) for v in value]
        if not isinstance(value, str) or "$result" not in value:
            return value
        for match in list(REF.finditer(value)):
            node: Any = results
            for key in re.findall(r"\[([^\]]+)\]", match.group(1)):
                if isinstance(node, dict) and key in node:
                    node = node[key]
                elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                    node = node[int(key)]
                else:
                    break
            if match.group(0) == value:
                return node
            if isinstance(node, (int, float, str)) and not isinstance(node, bool):
                value = value.replace(match.group(0), str(node))
        return value

    def _batch(self, params: dict[str, Any]) -> Answer:
        cmd = params.get("cmd") or {}
        if isinstance(cmd, list):
            cmd = {str(i): c for i, c in enumerate(cmd)}
        if not isinstance(cmd, dict):
            raise ApiError("", "Parameter 'cmd' must be an array")
        halt = str(params.get("halt", "0")) not in ("0", "", "false", "N")
        self.stats["batches"] += 1
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for n, (key, command) in enumerate(cmd.items()):
            start = self.clock()
            if n >= MAX_BATCH:
                errors[key] = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
                continue
            method, _, query = str(command).partition("?")
            method = method.strip().lower()
            sub_params = self._resolve(phpquery.parse_query(query), results)
            self.stats["commands"] += 1
            try:
                if method == "batch":
                    raise ApiError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
                self._check_blocked(method)
                self._fault(method, sub_params)
                answer = self.call(method, sub_params)
            except ApiError as exc:
                errors[key] = {"error": exc.code, "error_description": exc.description}
                if halt:
                    break
                continue
            self.stats["methods"][method] = self.stats["methods"].get(method, 0) + 1
            results[key] = answer.result
            if answer.total is not None:
                totals[key] = answer.total
            if answer.next is not None:
                nexts[key] = answer.next
            times[key] = self._time_block(start, method)
        return Answer({"result": results or [], "result_error": errors or [], "result_total": totals or [],
                       "result_next": nexts or [], "result_time": times or []})

    def _fault(self, method: str, params: dict[str, Any]) -> None:
        for fault in self.chaos.faults:
            if fault.remaining > 0 and fault.method == method and (fault.match is None or fault.match(params)):
                fault.remaining -= 1
                self.stats["injected"] += 1
                raise ApiError(fault.code, fault.description)

    # -- methods -------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any]) -> Answer:
        handler = METHODS.get(method)
        if handler is None:
            raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        return handler(self, params)

    def _next_id(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def _stamp(self) -> str:
        return _now_iso(self.clock())

    @staticmethod
    def _fields(params: dict[str, Any]) -> dict[str, Any]:
        fields = params.get("fields")
        if fields is None:
            fields = params.get("FIELDS")
        if not isinstance(fields, dict):
            raise ApiError("", "Parameter 'fields' must be array.")
        return fields

    @staticmethod
    def _multifield(fields: dict[str, Any], name: str) -> list[dict[str, Any]]:
        raw = fields.get(name)
        if raw in (None, ""):
            return []
        items = list(raw.values()) if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            raise ApiError("", f"Field '{name}' must be an array of {{VALUE, VALUE_TYPE}}")
        out = []
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not str(item.get("VALUE") or "").strip():
                raise ApiError("", f"Field '{name}' has an empty VALUE")
            if name == "PHONE" and len(_digits(item["VALUE"])) < 5:
                raise ApiError("", f"Field '{name}' has an invalid phone number")
            out.append({"ID": str(n + 1), "VALUE_TYPE": str(item.get("VALUE_TYPE") or "WORK"),
                        "VALUE": str(item["VALUE"]), "TYPE_ID": name})
        return out

    def _scalar_fields(self, fields: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
        out = {}
        for key, value in fields.items():
            if key in skip:
                continue
            if isinstance(value, (dict, list)):
                raise ApiError("", f"Field '{key}' has an invalid value")
            out[key] = "" if value is None else str(value)
        return out

    def _user_ok(self, fields: dict[str, Any]) -> None:
        if "ASSIGNED_BY_ID" in fields:
            uid = _int(fields["ASSIGNED_BY_ID"], "ASSIGNED_BY_ID")
            if not any(u["ID"] == str(uid) for u in self.users):
                raise ApiError("", f"Field 'ASSIGNED_BY_ID': user {uid} not found")

    def contact_add(self, params: dict[str, Any]) -> Answer:
        fields = self._fields(params)
        phones = self._multifield(fields, "PHONE")
        emails = self._multifield(fields, "EMAIL")
        if not any(str(fields.get(k) or "").strip() for k in ("NAME", "LAST_NAME", "SECOND_NAME")):
            raise ApiError("", "Field 'NAME' is required: the contact has no name")
        self._user_ok(fields)
        cid = self._next_id("contact")
        row = {"ID": str(cid), "NAME": "", "LAST_NAME": "", "ASSIGNED_BY_ID": str(self.webhook_user),
               "SOURCE_ID": "", "OPENED": "Y", "ORIGINATOR_ID": None, "ORIGIN_ID": None,
               "DATE_CREATE": self._stamp(), "DATE_MODIFY": self._stamp()}
        row.update(self._scalar_fields(fields, ("PHONE", "EMAIL", "IM", "WEB")))
        row["PHONE"], row["EMAIL"] = phones, emails
        row["HAS_PHONE"] = "Y" if phones else "N"
        self.contacts[cid] = row
        return Answer(cid)

    def contact_update(self, params: dict[str, Any]) -> Answer:
        """crm.contact.update as documented: scalar fields are replaced; a multifield item
        with an ID changes that value (an empty VALUE deletes it), one without an ID is
        added beside the contact's values."""
        cid = _int(params.get("id", params.get("ID", "")), "id")
        row = self.contacts.get(cid)
        if row is None:
            raise ApiError("", "Not found")
        fields = self._fields(params)
        self._user_ok(fields)
        changes = self._scalar_fields(fields, ("PHONE", "EMAIL", "IM", "WEB"))
        merged: dict[str, list[dict[str, Any]]] = {}
        for name in ("PHONE", "EMAIL"):
            raw = fields.get(name)
            if raw in (None, ""):
                continue
            items = list(raw.values()) if isinstance(raw, dict) else raw
            if not isinstance(items, list):
                raise ApiError("", f"Field '{name}' must be an array of {{VALUE, VALUE_TYPE}}")
            values = [dict(v) for v in row.get(name) or []]
            for item in items:
                if not isinstance(item, dict):
                    raise ApiError("", f"Field '{name}' has an invalid value")
                if item.get("ID") not in (None, ""):
                    known = next((v for v in values if v["ID"] == str(item["ID"])), None)
                    if known is None:
                        raise ApiError("", f"Field '{name}': value {item['ID']} not found")
                    if not str(item.get("VALUE") or "").strip() or item.get("DELETE") == "Y":
                        values.remove(known)
                        continue
                    added = self._multifield({name: [item]}, name)[0]
                    known.update(VALUE=added["VALUE"], VALUE_TYPE=str(item.get("VALUE_TYPE") or known["VALUE_TYPE"]))
                    continue
                added = self._multifield({name: [item]}, name)[0]
                added["ID"] = str(max((int(v["ID"]) for v in values), default=0) + 1)
                values.append(added)
            merged[name] = values
        name_after = {**row, **changes}
        if not any(str(name_after.get(k) or "").strip() for k in ("NAME", "LAST_NAME", "SECOND_NAME")):
            raise ApiError("", "Field 'NAME' is required: the contact has no name")
        row.update(changes)
        for name, values in merged.items():
            row[name] = values
        row["HAS_PHONE"] = "Y" if row.get("PHONE") else "N"
        row["DATE_MODIFY"] = self._stamp()
        self._queue_event("ONCRMCONTACTUPDATE", cid)
        return Answer(True)

    def _entity_add(self, kind: str, params: dict[str, Any]) -> Answer:
        fields = self._fields(params)
        table = self.deals if kind == "deal" else self.leads
        row = self._scalar_fields(fields, ("CONTACT_IDS", "PHONE", "EMAIL"))
        if "CONTACT_ID" in fields and fields["CONTACT_ID"] not in ("", None):
            cid = _int(fields["CONTACT_ID"], "CONTACT_ID")
            if cid not in self.contacts:
                raise ApiError("", f"Field 'CONTACT_ID': contact {cid} not found")
            row["CONTACT_ID"] = str(cid)
        self._user_ok(fields)
        if kind == "deal":
            category = _int(fields.get("CATEGORY_ID", 0) or 0, "CATEGORY_ID")
            if not any(c["id"] == category for c in self.categories):
                raise ApiError("", f"Field 'CATEGORY_ID': pipeline {category} not found")
            stages = self._stages("DEAL_STAGE" if category == 0 else f"DEAL_STAGE_{category}")
            stage = str(fields.get("STAGE_ID") or stages[0][0])
            semantic = dict((s[0], s[2]) for s in stages).get(stage)
            if semantic is None:
                raise ApiError("", f"Field 'STAGE_ID': stage {stage} is not in pipeline {category}")
            row.update({"CATEGORY_ID": str(category), "STAGE_ID": stage, "STAGE_SEMANTIC_ID": semantic,
                        "CLOSED": "N" if semantic == "P" else "Y",
                        "OPPORTUNITY": str(fields.get("OPPORTUNITY") or "0.00"),
                        "CURRENCY_ID": str(fields.get("CURRENCY_ID") or "RUB")})
        else:
            status = str(fields.get("STATUS_ID") or "NEW")
            semantic = dict((s[0], s[2]) for s in LEAD_STATUSES).get(status)
            if semantic is None:
                raise ApiError("", f"Field 'STATUS_ID': status {status} not found")
            row.update({"STATUS_ID": status, "STATUS_SEMANTIC_ID": semantic})
        eid = self._next_id(kind)
        stamp = self._stamp()
        base = {"ID": str(eid), "TITLE": f"{kind.title()} #{eid}", "ASSIGNED_BY_ID": str(self.webhook_user),
                "OPENED": "Y", "SOURCE_ID": "", "SOURCE_DESCRIPTION": "", "CONTACT_ID": None,
                "ORIGINATOR_ID": None, "ORIGIN_ID": None, "UTM_SOURCE": None, "UTM_MEDIUM": None,
                "UTM_CAMPAIGN": None, "UTM_CONTENT": None, "UTM_TERM": None,
                "DATE_CREATE": stamp, "DATE_MODIFY": stamp, "MOVED_TIME": stamp}
        base.update({k: v for k, v in row.items() if v != "" or k not in base})
        table[eid] = base
        self._queue_event(f"ONCRM{kind.upper()}ADD", eid)
        return Answer(eid)

    def _entity_update(self, kind: str, params: dict[str, Any]) -> Answer:
        eid = _int(params.get("id", params.get("ID", "")), "id")
        table = self.deals if kind == "deal" else self.leads
        row = table.get(eid)
        if row is None:
            raise ApiError("", "Not found")
        fields = self._fields(params)
        self._user_ok(fields)
        changes = self._scalar_fields(fields, ("CONTACT_IDS",))
        stage_key = "STAGE_ID" if kind == "deal" else "STATUS_ID"
        if stage_key in changes and changes[stage_key] != row.get(stage_key):
            if kind == "deal":
                category = int(row["CATEGORY_ID"])
                stages = self._stages("DEAL_STAGE" if category == 0 else f"DEAL_STAGE_{category}")
            else:
                stages = LEAD_STATUSES
            semantic = dict((s[0], s[2]) for s in stages).get(changes[stage_key])
            if semantic is None:
                raise ApiError("", f"Field '{stage_key}': {changes[stage_key]} is not a stage here")
            changes["MOVED_TIME"] = self._stamp()
            if kind == "deal":
                changes.update({"STAGE_SEMANTIC_ID": semantic, "CLOSED": "N" if semantic == "P" else "Y"})
            else:
                changes["STATUS_SEMANTIC_ID"] = semantic
        row.update(changes)
        row["DATE_MODIFY"] = self._stamp()
        self._queue_event(f"ONCRM{kind.upper()}UPDATE", eid)
        return Answer(True)

    def entity_contacts(self, kind: str, action: str, params: dict[str, Any]) -> Answer:
        """crm.deal.contact.add / .delete / .items.get (and the lead's): the contacts bound
        to a deal; CONTACT_ID is the primary one. Binding a bound contact changes nothing."""
        eid = _int(params.get("id", params.get("ID", "")), "id")
        row = (self.deals if kind == "deal" else self.leads).get(eid)
        if row is None:
            raise ApiError("", "Not found")
        bound = self.bindings.setdefault((kind, eid), [int(row["CONTACT_ID"])] if row.get("CONTACT_ID") else [])
        if action == "items.get":
            return Answer([{"CONTACT_ID": cid, "SORT": 10 * (i + 1), "ROLE_ID": 0, "IS_PRIMARY": "Y" if i == 0 else "N"}
                           for i, cid in enumerate(bound)])
        fields = params.get("fields")
        if not isinstance(fields, dict):
            raise ApiError("", "Parameter 'fields' must be array.")
        cid = _int(fields.get("CONTACT_ID", ""), "CONTACT_ID")
        if action == "add":
            if cid not in self.contacts:
                raise ApiError("", f"Field 'CONTACT_ID': contact {cid} not found")
            if cid in bound:
                bound.remove(cid)
            if str(fields.get("IS_PRIMARY") or "N") == "Y":
                bound.insert(0, cid)
            else:
                bound.append(cid)
        elif cid in bound:
            bound.remove(cid)
        row["CONTACT_ID"] = str(bound[0]) if bound else None
        row["DATE_MODIFY"] = self._stamp()
        return Answer(True)

    def _get(self, table: dict[int, dict[str, Any]], params: dict[str, Any]) -> Answer:
        eid = _int(params.get("id", params.get("ID", "")), "id")
        if eid not in table:
            raise ApiError("", "Not found")
        return Answer(dict(table[eid]))

    def _list(self, rows: list[dict[str, Any]], params: dict[str, Any]) -> Answer:
        flt = params.get("filter") or params.get("FILTER") or {}
        if not isinstance(flt, dict):
            raise ApiError("", "Parameter 'filter' must be an array")
        matched = [r for r in rows if _matches(r, flt)]
        order = params.get("order") or {}
        if isinstance(order, dict):
            for key, direction in reversed(list(order.items())):
                def sort_key(r: dict[str, Any], key: str = key) -> Any:
                    v = str(r.get(key) or "")
                    return (0, int(v)) if v.isdigit() else (1, v)
                matched.sort(key=sort_key, reverse=str(direction).upper() == "DESC")
        select = params.get("select") or []
        if isinstance(select, dict):
            select = list(select.values())
        start = int(str(params.get("start") or 0) or 0)
        page = matched[start:start + PAGE]
        if select and "*" not in select:
            keep = set(select) | {"ID"}
            page = [{k: v for k, v in r.items() if k in keep} for r in page]
        nxt = start + PAGE if start + PAGE < len(matched) else None
        return Answer(page, total=len(matched), next=nxt)

    def findbycomm(self, params: dict[str, Any]) -> Answer:
        kind = str(params.get("type") or "").upper()
        if kind not in ("PHONE", "EMAIL"):
            raise ApiError("", "Parameter 'type' is not specified or invalid")
        values = params.get("values")
        if isinstance(values, dict):
            values = list(values.values())
        if not isinstance(values, list) or not values:
            raise ApiError("", "Parameter 'values' must be a non-empty array")
        if len(values) > 20:
            raise ApiError("", "Too many values: at most 20 are allowed")
        entity = str(params.get("entity_type") or "").upper()
        wanted = {_digits(v) if kind == "PHONE" else str(v).lower() for v in values}
        out: dict[str, list[int]] = {}
        tables = {"CONTACT": self.contacts, "LEAD": self.leads, "COMPANY": {}}
        for name, table in tables.items():
            if entity and entity != name:
                continue
            ids = []
            for eid, row in table.items():
                items = row.get(kind) or []
                got = {_digits(i["VALUE"]) if kind == "PHONE" else i["VALUE"].lower() for i in items}
                if got & wanted:
                    ids.append(eid)
            if ids:
                out[name] = sorted(ids)[:20]
        return Answer(out or [])

    def comment_add(self, params: dict[str, Any]) -> Answer:
        fields = params.get("fields")
        if not isinstance(fields, dict):
            raise ApiError("", "Parameter 'fields' must be array.")
        entity_type = str(fields.get("ENTITY_TYPE") or "").lower()
        if entity_type not in ("deal", "lead", "contact"):
            raise ApiError("100", "Field 'ENTITY_TYPE' is required")
        eid = _int(fields.get("ENTITY_ID", ""), "ENTITY_ID")
        table = {"deal": self.deals, "lead": self.leads, "contact": self.contacts}[entity_type]
        if eid not in table:
            raise ApiError("OWNER_NOT_FOUND", f"Owner of the element not found: {entity_type} {eid}")
        text = fields.get("COMMENT")
        if not isinstance(text, str) or not text.strip():
            raise ApiError("INVALID_ARG_VALUE", "Empty comment")
        mid = self._next_id("comment")
        self.comments[mid] = {"ID": str(mid), "CREATED": self._stamp(), "ENTITY_ID": str(eid),
                              "ENTITY_TYPE": entity_type, "AUTHOR_ID": str(fields.get("AUTHOR_ID") or self.webhook_user),
                              "COMMENT": text, "FILES": []}
        return Answer(mid)

    def todo_add(self, params: dict[str, Any]) -> Answer:
        """crm.activity.todo.add: a to-do ("дело") on a lead (1), deal (2) or contact (3)."""
        owner_type = _int(params.get("ownerTypeId", ""), "ownerTypeId")
        owner_id = _int(params.get("ownerId", ""), "ownerId")
        table = {1: self.leads, 2: self.deals, 3: self.contacts}.get(owner_type)
        if table is None or owner_id not in table:
            raise ApiError("NOT_FOUND", "Owner not found")
        deadline = params.get("deadline")
        if not isinstance(deadline, str) or not deadline.strip():
            raise ApiError("INVALID_ARG_VALUE", "Deadline is required")
        try:
            datetime.fromisoformat(deadline)
        except ValueError:
            raise ApiError("INVALID_ARG_VALUE", "Deadline is not a date") from None
        responsible = params.get("responsibleId")
        if responsible not in (None, ""):
            responsible = _int(responsible, "responsibleId")
            if not any(u["ID"] == str(responsible) for u in self.users):
                raise ApiError("NOT_FOUND", f"User {responsible} not found")
        aid = self._next_id("activity")
        self.activities[aid] = {
            "ID": str(aid), "OWNER_TYPE_ID": str(owner_type), "OWNER_ID": str(owner_id), "TYPE_ID": "6",
            "PROVIDER_ID": "CRM_TODO", "PROVIDER_TYPE_ID": "TODO", "SUBJECT": "",
            "DESCRIPTION": str(params.get("description") or ""), "DEADLINE": deadline, "COMPLETED": "N",
            "RESPONSIBLE_ID": str(responsible or self.webhook_user), "CREATED": self._stamp()}
        return Answer({"id": aid})

    def _stages(self, entity_id: str) -> list[tuple[str, str, str]]:
        if entity_id in DEAL_STAGES:
            return DEAL_STAGES[entity_id]
        if entity_id == "STATUS":
            return LEAD_STATUSES
        if entity_id == "SOURCE":
            return [(s, s.replace("_", " ").title(), "") for s in SOURCES]
        return []

    def status_list(self, params: dict[str, Any]) -> Answer:
        flt = params.get("filter") or {}
        wanted = str(flt.get("ENTITY_ID") or "") if isinstance(flt, dict) else ""
        names = [wanted] if wanted else [*DEAL_STAGES, "STATUS", "SOURCE"]
        rows = []
        n = 0
        for name in names:
            for sort, (sid, label, semantic) in enumerate(self._stages(name), start=1):
                n += 1
                rows.append({"ID": str(n), "ENTITY_ID": name, "STATUS_ID": sid, "NAME": label, "SORT": str(sort * 10),
                             "SYSTEM": "Y", "SEMANTICS": {"P": None, "S": "S", "F": "F"}.get(semantic)})
        return Answer(rows, total=len(rows))

    def event_bind(self, params: dict[str, Any]) -> Answer:
        if getattr(self, "_auth_kind", "") != "oauth":
            raise ApiError("WRONG_AUTH_TYPE", "Current authorization type is denied for this method", 403)
        event = str(params.get("event") or "").upper()
        handler = str(params.get("handler") or "")
        if not event.startswith(("ONCRM", "ONIMCONNECTOR")):
            raise ApiError("ERROR_EVENT_NOT_FOUND", "Event not found")
        if not handler.startswith(("http://", "https://")):
            raise ApiError("", "Handler URL is invalid")
        if any(h["event"] == event and h["handler"] == handler for h in self.handlers):
            raise ApiError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
        self.handlers.append({"event": event, "handler": handler, "auth_type": "0", "offline": 0,
                              "id": self._next_id("handler"), "app": True})
        return Answer(True)

    def add_outbound_webhook(self, event: str, handler: str) -> None:
        """What an admin sets up in Developer resources > Outbound webhook."""
        with self.lock:
            self.handlers.append({"event": event.upper(), "handler": handler, "auth_type": "0", "offline": 0,
                                  "id": self._next_id("handler"), "app": False})

    def _queue_event(self, event: str, eid: int) -> None:
        for h in self.handlers:
            if h["event"] == event:
                self.outbox.append({"handler": h, "event": event, "id": eid, "ts": int(self.clock())})

    def event_form(self, item: dict[str, Any]) -> dict[str, str]:
        host = urlsplit(self.base_url).netloc
        auth: dict[str, Any] = {"domain": host, "client_endpoint": f"{self.base_url}/rest/",
                                "server_endpoint": f"{self.base_url}/oauth/rest/",
                                "member_id": self.member_id, "application_token": self.application_token}
        if item["handler"]["app"]:
            auth.update({"access_token": self.access_token, "expires_in": "3600", "scope": "crm",
                         "status": "L", "refresh_token": self.refresh_token})
        body = {"event": item["event"], "event_handler_id": str(item["handler"]["id"]),
                "data": item.get("data") or {"FIELDS": {"ID": str(item["id"])}}, "ts": str(item["ts"]), "auth": auth}
        return dict(phpquery.flatten(body))

    def dispatch_events(self, timeout: float = 5.0) -> list[int]:
        """Send queued events to their handlers now (the portal's queue server)."""
        with self.lock:
            queued, self.outbox = self.outbox, []
        statuses = []
        for item in queued:
            try:
                r = self.post(item["handler"]["handler"], data=self.event_form(item), timeout=timeout)
                statuses.append(r.status_code)
            except requests.RequestException:
                statuses.append(0)
            self.stats["events_sent"] += 1
        return statuses

    def move(self, kind: str, eid: int, stage: str, **fields: Any) -> None:
        """A user drags the deal (lead) to another stage in the portal's UI, perhaps
        setting other fields with it (OPPORTUNITY="22500.00")."""
        with self.lock:
            key = "STAGE_ID" if kind == "deal" else "STATUS_ID"
            self._entity_update(kind, {"id": eid, "fields": {**fields, key: stage}})

    def authorize(self, args: dict[str, str]) -> tuple[int, dict[str, str] | str]:
        """The portal's /oauth/authorize/ page: once the user allows the app, the browser
        goes to the app's redirect URL with code, state, domain, member_id, scope and
        server_domain; (status, query) or (status, error page text)."""
        with self.lock:
            if args.get("client_id") != self.client_id:
                return 400, "Application not found"
            answer = {"state": args["state"]} if args.get("state") else {}
            if not self.approve:
                return 302, {"error": "access_denied", **answer}
            code = secrets.token_hex(20)
            self.codes[code] = {"at": self.clock(), "used": False}
            host = self.base_url.split("://", 1)[-1]
            return 302, {"code": code, **answer, "domain": host, "member_id": self.member_id, "scope": "crm,user",
                         "server_domain": "oauth.bitrix.info"}

    def oauth_token(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            grant = params.get("grant_type")
            if grant not in ("refresh_token", "authorization_code"):
                return 400, {"error": "invalid_request",
                             "error_description": "grant_type must be authorization_code or refresh_token"}
            if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
                return 401, {"error": "invalid_client", "error_description": "Invalid client"}
            if grant == "authorization_code":
                code = self.codes.get(str(params.get("code") or ""))
                if code is None or code["used"] or self.clock() - code["at"] > 30:
                    return 400, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
                code["used"] = True
                self.stats["code_exchanges"] = self.stats.get("code_exchanges", 0) + 1
            elif params.get("refresh_token") != self.refresh_token:
                return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
            else:
                self.stats["refreshes"] = self.stats.get("refreshes", 0) + 1
            self.expired_tokens.add(self.access_token)
            self.access_token, self.refresh_token = secrets.token_hex(16), secrets.token_hex(16)
            return 200, {"access_token": self.access_token, "refresh_token": self.refresh_token,
                         "expires_in": 3600, "scope": "crm,user", "domain": "oauth.bitrix.info",
                         "server_endpoint": f"{self.base_url}/oauth/rest/",
                         "client_endpoint": f"{self.base_url}/rest/", "member_id": self.member_id,
                         "status": "L"}

    # -- control (tests) -----------------------------------------------------------------
    def expire_access_token(self) -> None:
        with self.lock:
            self.expired_tokens.add(self.access_token)

    def fail_commands(self, method: str, count: int = 1, *, code: str = "INTERNAL_SERVER_ERROR",
                      description: str = "Internal server error",
                      match: Callable[[dict[str, Any]], bool] | None = None) -> None:
        with self.lock:
            self.chaos.faults.append(CommandFault(method, count, code, description, match))

    def operator_reply(self, external_chat: str, text: str, **kw: Any) -> int:
        """An operator answers in an open line chat (ONIMCONNECTORMESSAGEADD is queued)."""
        return emulator_openlines.operator_reply(self, external_chat, text, **kw)

    def block_method(self, method: str, seconds: float) -> None:
        with self.lock:
            self.chaos.blocked[method] = self.clock() + seconds

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {"contacts": len(self.contacts), "deals": len(self.deals) + len(self.leads),
                    "notes": len(self.comments)}


def _profile(p: Portal, params: dict[str, Any]) -> Answer:
    user = next(u for u in p.users if u["ID"] == str(p.webhook_user))
    return Answer({"ID": user["ID"], "ADMIN": True, "NAME": user["NAME"], "LAST_NAME": user["LAST_NAME"],
                   "PERSONAL_GENDER": "", "TIME_ZONE": ""})


def _user_get(p: Portal, params: dict[str, Any]) -> Answer:
    flt = params.get("FILTER") or params.get("filter") or {}
    flt = {k: ("True" if str(v) in ("Y", "true", "1", "True") else v) if k == "ACTIVE" else v
           for k, v in (flt.items() if isinstance(flt, dict) else [])}
    return p._list([dict(u) for u in p.users], {**params, "filter": flt})


def _category_list(p: Portal, params: dict[str, Any]) -> Answer:
    if str(params.get("entityTypeId") or "") != "2":
        raise ApiError("", "entityTypeId: only deals (2) have pipelines here")
    return Answer({"categories": [dict(c) for c in p.categories]}, total=len(p.categories))


def _event_get(p: Portal, params: dict[str, Any]) -> Answer:
    return Answer([{"event": h["event"], "handler": h["handler"], "auth_type": h["auth_type"],
                    "offline": h["offline"]} for h in p.handlers if h["app"]])


METHODS: dict[str, Callable[[Portal, dict[str, Any]], Answer]] = {
    "profile": _profile,
    "user.get": _user_get,
    "crm.category.list": _category_list,
    "crm.status.list": lambda p, a: p.status_list(a),
    "crm.duplicate.findbycomm": lambda p, a: p.findbycomm(a),
    "crm.contact.add": lambda p, a: p.contact_add(a),
    "crm.contact.get": lambda p, a: p._get(p.contacts, a),
    "crm.contact.list": lambda p, a: p._list(list(p.contacts.values()), a),
    "crm.contact.update": lambda p, a: p.contact_update(a),
    "crm.deal.add": lambda p, a: p._entity_add("deal", a),
    "crm.deal.get": lambda p, a: p._get(p.deals, a),
    "crm.deal.list": lambda p, a: p._list(list(p.deals.values()), a),
    "crm.deal.update": lambda p, a: p._entity_update("deal", a),
    "crm.deal.contact.add": lambda p, a: p.entity_contacts("deal", "add", a),
    "crm.deal.contact.delete": lambda p, a: p.entity_contacts("deal", "delete", a),
    "crm.deal.contact.items.get": lambda p, a: p.entity_contacts("deal", "items.get", a),
    "crm.lead.contact.add": lambda p, a: p.entity_contacts("lead", "add", a),
    "crm.lead.contact.delete": lambda p, a: p.entity_contacts("lead", "delete", a),
    "crm.lead.contact.items.get": lambda p, a: p.entity_contacts("lead", "items.get", a),
    "crm.lead.add": lambda p, a: p._entity_add("lead", a),
    "crm.lead.get": lambda p, a: p._get(p.leads, a),
    "crm.lead.list": lambda p, a: p._list(list(p.leads.values()), a),
    "crm.lead.update": lambda p, a: p._entity_update("lead", a),
    "crm.timeline.comment.add": lambda p, a: p.comment_add(a),
    "crm.timeline.comment.list": lambda p, a: p._list(list(p.comments.values()), a),
    "crm.activity.todo.add": lambda p, a: p.todo_add(a),
    "crm.activity.list": lambda p, a: p._list(list(p.activities.values()), a),
    "event.bind": lambda p, a: p.event_bind(a),
    "event.get": _event_get,
    **emulator_openlines.METHODS,
}


def _request_params() -> dict[str, Any]:
    params: dict[str, Any] = phpquery.parse_query(request.query_string.decode("utf-8", "replace"))
    raw = request.get_data(cache=True)
    if raw:
        if (request.mimetype or "").endswith("json"):
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError("", "The request body is not valid JSON") from None
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update(phpquery.parse_query(raw.decode("utf-8", "replace")))
    return params


def create_app(portal: Portal) -> Flask:
    app = Flask("bitrix24-emulator")

    @app.route("/rest/<path:path>", methods=["GET", "POST"])
    def rest(path: str) -> Response:
        try:
            params = _request_params()
        except ApiError as exc:
            return Response(json.dumps({"error": exc.code, "error_description": exc.description}), 400,
                            mimetype="application/json")
        status, body, delay = portal.handle(path, params)
        if delay:
            time.sleep(delay)
        return Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")

    @app.get("/openlines")
    def openlines_page() -> Response:
        return Response(emulator_openlines.chats_page(portal), 200, mimetype="text/html")

    @app.post(emulator_openlines.REPLY_PATH)
    def openlines_reply() -> Response:
        """An operator types in the chat on the page (hub demo); the event goes out at once."""
        chat, text = request.form.get("chat", ""), request.form.get("text", "").strip()
        if not text or not any(room["external_id"] == chat for room in portal.ol.chats.values()):
            return Response("no such chat, or nothing typed", 400, mimetype="text/plain")
        portal.operator_reply(chat, text)
        portal.dispatch_events()
        return Response(status=303, headers={"Location": "/openlines"})

    @app.get("/oauth/authorize/")
    def authorize() -> Response:
        status, answer = portal.authorize(request.args.to_dict())
        if status != 302:
            return Response(str(answer), status, mimetype="text/plain")
        target = portal.redirect_uri + ("&" if "?" in portal.redirect_uri else "?") + urlencode(answer)
        return Response(status=302, headers={"Location": target})

    @app.route("/oauth/token/", methods=["GET", "POST"])
    def token() -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        status, body = portal.oauth_token(params)
        return Response(json.dumps(body), status, mimetype="application/json")

    return app


class EmulatorHandle:
    def __init__(self, portal: Portal, base_url: str):
        self.portal = portal
        self.base_url = base_url

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/{self.portal.webhook_user}/{self.portal.webhook_code}/"

    def stats(self) -> dict[str, Any]:
        with self.portal.lock:
            s = dict(self.portal.stats)
            s["methods"] = dict(s["methods"])
            return s

    def counts(self) -> dict[str, int]:
        return self.portal.counts()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # thousands of lines in a bench
        pass


@contextmanager
def serve(**options: Any) -> Iterator[EmulatorHandle]:
    """Run a portal on 127.0.0.1 with an ephemeral port for the duration of the block."""
    portal = Portal(**options)
    server = make_server("127.0.0.1", 0, create_app(portal), threaded=True, request_handler=_QuietHandler)
    portal.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield EmulatorHandle(portal, portal.base_url)
    finally:
        server.shutdown()
        server.server_close()
