"""A faithful local HubSpot CRM API (the parts the connector uses), for tests, benchmarks
and demos: objects (contacts, deals, communications, tasks) with single and batch
create, read, update and search, associations v4, pipelines, owners, properties, account
details, the 10-second rolling limit and the search limit (the same for every object) with
HubSpot's 429 bodies and X-HubSpot-RateLimit-* headers, outbound webhooks signed with the v3 signature, and OAuth (POST /oauth/v1/token:
single-use authorization codes, access tokens that expire, refresh tokens that do not
rotate and can be revoked by uninstalling the app).

It refuses what HubSpot refuses: unknown or read-only properties, invalid options,
association type ids that do not fit the objects, batches over 100, duplicate unique
values (409 "... already exists. Existing ID: n"). Chaos can be switched on: injected
5xx, 429 with Retry-After, and slow answers (the write happens, the answer comes late).
"""
from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlencode

import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from connectors.hubspot import signature
from connectors.hubspot.emulator_errors import ApiError

BATCH_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 10
SEARCH_MAX_FILTERS = 25
SEARCH_MAX_VALUES = 100
ASSOCIATION_PAGE = 500

TYPES = {"contacts": "0-1", "deals": "0-3", "communications": "0-18", "tasks": "0-27", "notes": "0-46"}
ALIASES = {"contact": "contacts", "0-1": "contacts", "contacts": "contacts",
           "deal": "deals", "0-3": "deals", "deals": "deals",
           "communication": "communications", "0-18": "communications", "communications": "communications",
           "task": "tasks", "0-27": "tasks", "tasks": "tasks",
           "note": "notes", "0-46": "notes", "notes": "notes"}
SINGULAR = {"contacts": "Contact", "deals": "Deal", "communications": "Communication", "tasks": "Task", "notes": "Note"}
ACTIVITIES = ("communications", "tasks", "notes")  # hs_createdate instead of createdate

# HUBSPOT_DEFINED association type id -> (from type, to type); inverse ids pair up.
ASSOCIATION_TYPES = {3: ("deals", "contacts"), 4: ("contacts", "deals"),
                     81: ("communications", "contacts"), 82: ("contacts", "communications"),
                     85: ("communications", "deals"), 86: ("deals", "communications"),
                     203: ("contacts", "tasks"), 204: ("tasks", "contacts"),
                     215: ("deals", "tasks"), 216: ("tasks", "deals"),
                     201: ("contacts", "notes"), 202: ("notes", "contacts")}
INVERSE = {3: 4, 4: 3, 81: 82, 82: 81, 85: 86, 86: 85, 203: 204, 204: 203, 215: 216, 216: 215, 201: 202, 202: 201}
DEFAULT_TYPE = {("deals", "contacts"): 3, ("contacts", "deals"): 4, ("communications", "contacts"): 81,
                ("contacts", "communications"): 82, ("communications", "deals"): 85,
                ("deals", "communications"): 86, ("contacts", "tasks"): 203, ("tasks", "contacts"): 204,
                ("deals", "tasks"): 215, ("tasks", "deals"): 216, ("contacts", "notes"): 201,
                ("notes", "contacts"): 202}

READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate",
             "hs_is_closed", "hs_is_closed_won"}
DEFAULT_RETURNED = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"],
    "communications": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "tasks": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "notes": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}


def _prop(name: str, label: str, type_: str = "string", field_type: str = "text", group: str = "",
          options: list[str] | None = None, unique: bool = False, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "label": label, "type": type_, "fieldType": field_type, "groupName": group,
            "hasUniqueValue": unique, "options": [{"label": o, "value": o, "hidden": False} for o in options or []],
            "modificationMetadata": {"readOnlyValue": read_only, "readOnlyDefinition": True, "archivable": False},
            "calculated": read_only, "hubspotDefined": True, "archived": False,
            "createdAt": "2019-08-06T02:41:08.029Z", "updatedAt": "2019-08-06T02:41:08.029Z"}


def default_properties() -> dict[str, dict[str, dict[str, Any]]]:
    contacts = [
        _prop("email", "Email", group="contactinformation"),
        _prop("firstname", "First Name", group="contactinformation"),
        _prop("lastname", "Last Name", group="contactinformation"),
        _prop("phone", "Phone Number", field_type="phonenumber", group="contactinformation"),
        _prop("mobilephone", "Mobile Phone Number", field_type="phonenumber", group="contactinformation"),
        _prop("company", "Company Name", group="contactinformation"),
        _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation",
              ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
               "evangelist", "other"]),
        _prop("hubspot_owner_id", "Contact owner", "enumeration", "select", "contactinformation"),
        _prop("hs_lead_status", "Lead Status", "enumeration", "radio", "contactinformation",
              ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
               "BAD_TIMING"]),
    ]
    deals = [
        _prop("dealname", "Deal Name", group="dealinformation"),
        _prop("pipeline", "Pipeline", "enumeration", "select", "dealinformation"),
        _prop("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation"),
        _prop("amount", "Amount", "number", "number", "dealinformation"),
        _prop("closedate", "Close Date", "datetime", "date", "dealinformation"),
        _prop("hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation"),
        _prop("dealtype", "Deal Type", "enumeration", "radio", "dealinformation", ["newbusiness", "existingbusiness"]),
        _prop("description", "Deal Description", "string", "textarea", "dealinformation"),
        _prop("deal_currency_code", "Currency", "enumeration", "select", "dealinformation"),
        _prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", "dealinformation", read_only=True),
        _prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", "dealinformation", read_only=True),
    ]
    comms = [
        _prop("hs_communication_channel_type", "Channel type", "enumeration", "select", "communication",
              ["WHATS_APP", "LINKEDIN_MESSAGE", "SMS"]),
        _prop("hs_communication_logged_from", "Logged from", "enumeration", "select", "communication", ["CRM"]),
        _prop("hs_communication_body", "Body", "string", "html", "communication"),
        _prop("hs_timestamp", "Activity date", "datetime", "date", "communication"),
        _prop("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "communication"),
    ]
    tasks = [
        _prop("hs_timestamp", "Due date", "datetime", "date", "task"),
        _prop("hs_task_subject", "Task Title", "string", "text", "task"),
        _prop("hs_task_body", "Notes", "string", "html", "task"),
        _prop("hs_task_status", "Task Status", "enumeration", "select", "task",
              ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]),
        _prop("hs_task_priority", "Priority", "enumeration", "select", "task", ["NONE", "LOW", "MEDIUM", "HIGH"]),
        _prop("hs_task_type", "Task Type", "enumeration", "select", "task", ["EMAIL", "CALL", "TODO"]),
        _prop("hs_task_reminders", "Reminder", "string", "text", "task"),
        _prop("hubspot_owner_id", "Assigned to", "enumeration", "select", "task"),
    ]
    notes = [
        _prop("hs_timestamp", "Activity date", "datetime", "date", "note"),
        _prop("hs_note_body", "Note body", "string", "html", "note"),
        _prop("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "note"),
    ]
    out = {"contacts": {p["name"]: p for p in contacts}, "deals": {p["name"]: p for p in deals},
           "communications": {p["name"]: p for p in comms}, "tasks": {p["name"]: p for p in tasks},
           "notes": {p["name"]: p for p in notes}}
    for type_, props in out.items():
        for name in READ_ONLY:
            props[name] = _prop(name, name, "datetime" if "date" in name else "string", "text", "", read_only=True)
    return out


def default_pipelines() -> list[dict[str, Any]]:
    def stage(id_: str, label: str, order: int, probability: str, closed: bool = False) -> dict[str, Any]:
        return {"id": id_, "label": label, "displayOrder": order, "archived": False,
                "metadata": {"isClosed": "true" if closed else "false", "probability": probability},
                "createdAt": "2019-08-06T02:41:08.029Z", "updatedAt": "2019-08-06T02:41:08.029Z"}
    return [
        {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "archived": False,
         "createdAt": "2019-08-06T02:41:08.029Z", "updatedAt": "2019-08-06T02:41:08.029Z",
         "stages": [stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2"),
                    stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4"),
                    stage("presentationscheduled", "Presentation Scheduled", 2, "0.6"),
                    stage("decisionmakerboughtin", "Decision Maker Bought-In", 3, "0.8"),
                    stage("contractsent", "Contract Sent", 4, "0.9"),
                    stage("closedwon", "Closed Won", 5, "1.0", True),
                    stage("closedlost", "Closed Lost", 6, "0.0", True)]},
        {"id": "1023456", "label": "WhatsApp orders", "displayOrder": 1, "archived": False,
         "createdAt": "2024-02-01T10:00:00.000Z", "updatedAt": "2024-02-01T10:00:00.000Z",
         "stages": [stage("1023457", "New chat", 0, "0.1"), stage("1023458", "Paid", 1, "0.9"),
                    stage("1023459", "Shipped", 2, "1.0", True), stage("1023460", "Lost", 3, "0.0", True)]},
    ]


def default_owners() -> list[dict[str, Any]]:
    def owner(id_: str, email: str, first: str, last: str, user_id: int) -> dict[str, Any]:
        return {"id": id_, "email": email, "firstName": first, "lastName": last, "userId": user_id,
                "userIdIncludingInactive": user_id, "type": "PERSON", "archived": False, "teams": [],
                "createdAt": "2023-01-10T09:00:00.000Z", "updatedAt": "2024-05-01T09:00:00.000Z"}
    return [owner("41629779", "olga@example.com", "Olga", "Petrova", 9001),
            owner("41629780", "ivan@example.com", "Ivan", "Sokolov", 9002),
            owner("41629781", "ana@example.com", "Ana", "Souza", 9003)]


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(time.time() * 1000) % 1000:03d}Z"


def _invalid(problems: list[dict[str, Any]]) -> ApiError:
    return ApiError(400, "Property values were not valid: " + json.dumps(problems), "VALIDATION_ERROR",
                    errors=[{"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
                            for p in problems])


@dataclass
class Options:
    token: str = "pat-na1-emulator-token-0000"
    client_secret: str = "emulator-client-secret"
    client_id: str = "7f3c2a1e-94d5-4b8e-a0c6-5e2d81f4b937"
    redirect_uri: str = "https://hub.example.com/oauth/hubspot"
    redirect_uris: tuple[str, ...] = ()  # more redirect URLs registered in the app's Auth settings
    # The account that installs the app at /oauth/authorize (the emulated user approves at once).
    approve_installs: bool = True
    access_token_ttl: int = 1800  # HubSpot: 30 minutes
    per_10_seconds: int = 100
    search_per_second: int = 5
    enforce_limits: bool = True
    daily_limit: int = 1_000_000
    fail_rate: float = 0.0        # injected 5xx, before the request is applied
    rate429_rate: float = 0.0     # injected 429 with Retry-After
    retry_after: int = 1
    timeout_rate: float = 0.0     # slow answers, after the request is applied
    timeout_seconds: float = 2.0
    delay_seconds: float = 0.0    # every answer on a chaos path comes this late (after applying)
    chaos_paths: tuple[str, ...] = ("/crm/",)
    seed: int = 7


@dataclass
class State:
    options: Options
    lock: threading.RLock = field(default_factory=threading.RLock)
    tokens: set[str] = field(default_factory=set)
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in TYPES})
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=default_properties)
    pipelines: list[dict[str, Any]] = field(default_factory=default_pipelines)
    owners: list[dict[str, Any]] = field(default_factory=default_owners)
    # (type, id) -> {(other type, other id): type id}
    associations: dict[tuple[str, str], dict[tuple[str, str], int]] = field(default_factory=dict)
    next_id: int = 51_000_000_001
    counters: Counter = field(default_factory=Counter)
    window: deque = field(default_factory=deque)
    search_window: deque = field(default_factory=deque)
    webhook_targets: list[tuple[str, str]] = field(default_factory=list)
    pending_webhooks: list[dict[str, Any]] = field(default_factory=list)
    webhook_log: list[dict[str, Any]] = field(default_factory=list)
    portal_id: int = 62515
    oauth_codes: dict[str, dict[str, Any]] = field(default_factory=dict)      # code -> {redirect_uri, used}
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)   # token -> {revoked}
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)    # token -> {expires_at, revoked}
    inbox: Any = None  # emulator_inbox.InboxState: the Conversations inbox and custom channels

    def __post_init__(self) -> None:
        from connectors.hubspot.emulator_inbox import InboxState
        if self.inbox is None:
            self.inbox = InboxState()
        self.tokens.add(self.options.token)
        self.rng = random.Random(self.options.seed)

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    # -- OAuth -------------------------------------------------------------------------------
    def issue_access_token(self, refresh_token: str) -> str:
        token = "C" + uuid.uuid4().hex.upper()[:8] + "-" + uuid.uuid4().hex + uuid.uuid4().hex[:24]
        self.access_tokens[token] = {"expires_at": time.time() + self.options.access_token_ttl,
                                     "refresh_token": refresh_token, "revoked": False}
        return token

    def bearer_problem(self, token: str) -> ApiError | None:
        """None when `token` may call the API; else HubSpot's 401."""
        if token in self.tokens:
            return None
        entry = self.access_tokens.get(token)
        if entry is not None and not entry["revoked"]:
            ago = time.time() - entry["expires_at"]
            if ago < 0:
                return None
            self.counters["expired_token_rejections"] += 1
            amount, unit = (int(ago), "second") if ago < 60 else (int(ago // 60), "minute") if ago < 3600 \
                else (int(ago // 3600), "hour")
            expired = datetime.fromtimestamp(entry["expires_at"], timezone.utc)
            return ApiError(401, f"The OAuth token used to make this call expired {amount} {unit}(s) ago.",
                            "EXPIRED_AUTHENTICATION",
                            context={"expire time": [expired.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"]})
        return ApiError(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                             "authentication and you can find more details at "
                             "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                        "INVALID_AUTHENTICATION")

    # -- properties ------------------------------------------------------------------------
    def check_properties(self, type_: str, props: Any, *, creating: bool, current: dict[str, Any] | None = None) -> dict[str, str]:
        if not isinstance(props, dict):
            raise ApiError(400, "Invalid input JSON on line 1: properties must be an object", "VALIDATION_ERROR")
        known = self.properties[type_]
        problems = []
        clean: dict[str, str] = {}
        for name, value in props.items():
            definition = known.get(name)
            if definition is None:
                problems.append({"isValid": False, "message": f'Property "{name}" does not exist',
                                 "error": "PROPERTY_DOESNT_EXIST", "name": name,
                                 "localizedErrorMessage": f'Property "{name}" does not exist'})
                continue
            if definition["modificationMetadata"]["readOnlyValue"]:
                problems.append({"isValid": False, "message": f"{name} is a read only property; its value cannot be set.",
                                 "error": "READ_ONLY_VALUE", "name": name})
                continue
            text = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
            problem = self._check_value(type_, definition, text, props, current)
            if problem:
                problems.append({"isValid": False, "message": problem[1], "error": problem[0], "name": name})
            else:
                clean[name] = text
        if creating and not problems:
            for name in self._required(type_):
                if not clean.get(name):
                    problems.append({"isValid": False, "message": f"{name} is required", "error": "REQUIRED",
                                     "name": name})
        if problems:
            raise _invalid(problems)
        return clean

    @staticmethod
    def _required(type_: str) -> list[str]:
        return {"deals": ["dealname", "dealstage"],
                "communications": ["hs_communication_channel_type", "hs_communication_logged_from"],
                "tasks": ["hs_timestamp"], "notes": ["hs_timestamp"]}.get(type_, [])

    def _check_value(self, type_: str, definition: dict[str, Any], text: str, props: dict[str, Any],
                     current: dict[str, Any] | None) -> tuple[str, str] | None:
        name = definition["name"]
        if text == "":
            return None
        if name == "hubspot_owner_id":
            if text not in {o["id"] for o in self.owners}:
                return "INVALID_OPTION", f"{text} was not one of the allowed options"
            return None
        if type_ == "deals" and name == "pipeline":
            if text not in {p["id"] for p in self.pipelines}:
                return "INVALID_OPTION", f"{text} was not one of the allowed options: {[p['id'] for p in self.pipelines]}"
            return None
        if type_ == "deals" and name == "dealstage":
            pipeline_id = str(props.get("pipeline") or (current or {}).get("pipeline") or "default")
            pipeline = next((p for p in self.pipelines if p["id"] == pipeline_id), None)
            allowed = [s["id"] for s in (pipeline or {}).get("stages", [])]
            if text not in allowed:
                return "INVALID_OPTION", f"{text} was not one of the allowed options: {allowed}"
            return None
        if definition["type"] == "enumeration" and definition["options"]:
            allowed = [o["value"] for o in definition["options"]]
            if text not in allowed:
                return "INVALID_OPTION", f"{text} was not one of the allowed options: {allowed}"
        if definition["type"] == "number":
            try:
                float(text)
            except ValueError:
                return "INVALID_DOUBLE", f"{text} is not a valid number"
        if definition["type"] in ("datetime", "date"):
            if parse_timestamp(text) is None:
                return "INVALID_DATE", f"{text} is not a valid date-time (ISO 8601 or epoch milliseconds)"
        if len(text) > 65536:
            return "INVALID_STRING", "values are limited to 65536 characters"
        return None

    def unique_names(self, type_: str) -> list[str]:
        return [n for n, d in self.properties[type_].items() if d.get("hasUniqueValue")]

    def find_unique(self, type_: str, name: str, value: str) -> str | None:
        for id_, record in self.objects[type_].items():
            if record["properties"].get(name) == value:
                return id_
        return None

    # -- records -------------------------------------------------------------------------------
    def closed_flags(self, props: dict[str, Any]) -> dict[str, str]:
        """HubSpot's calculated hs_is_closed / hs_is_closed_won: the stage is closed, and
        won when its probability is 1.0."""
        pipeline = next((p for p in self.pipelines if p["id"] == props.get("pipeline")), None)
        stage = next((st for st in (pipeline or {}).get("stages", []) if st["id"] == props.get("dealstage")), None)
        closed = bool(stage) and stage["metadata"]["isClosed"] == "true"
        won = closed and float(stage["metadata"]["probability"]) >= 1.0  # type: ignore[index]
        return {"hs_is_closed": "true" if closed else "false", "hs_is_closed_won": "true" if won else "false"}

    def public(self, type_: str, record: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
        names = wanted if wanted else DEFAULT_RETURNED[type_]
        stored = record["properties"]
        if type_ == "deals":
            stored = {**stored, **self.closed_flags(stored)}
        props = {n: stored.get(n) for n in names if n in self.properties[type_] or n in stored}
        return {"id": record["id"], "properties": props, "createdAt": record["createdAt"],
                "updatedAt": record["updatedAt"], "archived": False}

    def associate(self, a_type: str, a_id: str, b_type: str, b_id: str, type_id: int) -> None:
        self.associations.setdefault((a_type, a_id), {})[(b_type, b_id)] = type_id
        self.associations.setdefault((b_type, b_id), {})[(a_type, a_id)] = INVERSE[type_id]

    def check_associations(self, type_: str, associations: Any) -> list[tuple[str, str, int]]:
        out = []
        for assoc in associations or []:
            target = str(((assoc or {}).get("to") or {}).get("id") or "")
            for t in (assoc or {}).get("types") or []:
                type_id = t.get("associationTypeId")
                category = t.get("associationCategory", "HUBSPOT_DEFINED")
                pair = ASSOCIATION_TYPES.get(type_id) if category == "HUBSPOT_DEFINED" else None
                if pair is None or pair[0] != type_:
                    raise ApiError(400, f"{category} association type {type_id} is not valid from "
                                        f"{TYPES[type_]} ({type_})", "VALIDATION_ERROR")
                if target not in self.objects[pair[1]]:
                    raise ApiError(400, f"Object {pair[1]} {target!r} does not exist, so it cannot be associated",
                                   "VALIDATION_ERROR")
                out.append((pair[1], target, type_id))
        return out


def parse_timestamp(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(round(when.timestamp() * 1000))


def create_app(state: State) -> Flask:
    app = Flask("hubspot-emulator")
    opts = state.options

    def error(exc: ApiError) -> Response:
        body = {"status": "error", "message": exc.message, "correlationId": str(uuid.uuid4()),
                "category": exc.category, **exc.extra}
        return Response(json.dumps(body), status=exc.status, mimetype="application/json")

    def limit_headers(remaining: int) -> dict[str, str]:
        return {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(opts.per_10_seconds),
                "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
                "X-HubSpot-RateLimit-Daily": str(opts.daily_limit),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(opts.daily_limit - state.counters["accepted"], 0))}

    def too_many(policy: str, message: str, retry_after: int | None = None) -> Response:
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": policy,
                "groupName": f"publicapi:private-app:{state.portal_id}"}
        response = Response(json.dumps(body), status=429, mimetype="application/json")
        response.headers.update(limit_headers(0))
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.before_request
    def gate() -> Response | None:
        with state.lock:
            state.counters["requests"] += 1
            chaos = any(request.path.startswith(p) for p in opts.chaos_paths)
            if chaos and opts.rate429_rate and state.rng.random() < opts.rate429_rate:
                state.counters["injected_429"] += 1
                return too_many("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.",
                                opts.retry_after)
            if chaos and opts.fail_rate and state.rng.random() < opts.fail_rate:
                state.counters["injected_5xx"] += 1
                return error(ApiError(502, "Bad Gateway: the upstream service did not answer", "INTERNAL_ERROR"))
            request.environ["hubspot.slow"] = chaos and opts.timeout_rate and state.rng.random() < opts.timeout_rate
            request.environ["hubspot.chaos"] = chaos
            now = time.monotonic()
            if opts.enforce_limits:
                while state.window and now - state.window[0] >= 10.0:
                    state.window.popleft()
                if len(state.window) >= opts.per_10_seconds:
                    state.counters["rate_limited"] += 1
                    return too_many("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
                if request.path.endswith("/search"):
                    while state.search_window and now - state.search_window[0] >= 1.0:
                        state.search_window.popleft()
                    if len(state.search_window) >= opts.search_per_second:
                        state.counters["rate_limited"] += 1
                        state.counters["search_rate_limited"] += 1
                        return too_many("SECONDLY", "You have reached your secondly limit.")
                    state.search_window.append(now)
            state.window.append(now)
            state.counters["accepted"] += 1
            state.counters["path:" + request.method + " " + _route_name(request.path)] += 1
            request.environ["hubspot.remaining"] = opts.per_10_seconds - len(state.window)
        if request.path.startswith("/oauth/"):
            return None  # the token endpoint authenticates the app by its form fields
        if request.path in ("/conversations/v3/custom-channels", "/conversations/custom-channels/v3",
                            "/inbox/threads", "/inbox/threads/reply") and "Authorization" not in request.headers:
            return None  # registered with the developer API key (checked there); the demo page and its form
        auth = request.headers.get("Authorization", "")
        with state.lock:
            problem = state.bearer_problem(auth[7:] if auth.startswith("Bearer ") else "")
        return error(problem) if problem else None

    @app.after_request
    def finish(response: Response) -> Response:
        if response.status_code != 429:
            response.headers.update(limit_headers(int(request.environ.get("hubspot.remaining", 0))))
        if request.environ.get("hubspot.slow") and response.status_code < 400:
            with state.lock:
                state.counters["slow_answers"] += 1
            time.sleep(opts.timeout_seconds)
        elif opts.delay_seconds and request.environ.get("hubspot.chaos"):
            time.sleep(opts.delay_seconds)
        return response

    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError) -> Response:
        return error(exc)

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ApiError(400, "Invalid input JSON: expected an object", "VALIDATION_ERROR")
        return data

    def object_type(name: str) -> str:
        if name not in ALIASES:
            raise ApiError(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
        return ALIASES[name]

    def inputs_of(data: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = data.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise ApiError(400, "Invalid input JSON: inputs must be a non-empty array", "VALIDATION_ERROR")
        if len(inputs) > BATCH_LIMIT:
            raise ApiError(400, f"The maximum number of inputs supported in a batch request is {BATCH_LIMIT}. "
                                f"Please reduce the number of items and try again", "VALIDATION_ERROR")
        return inputs

    def ok(payload: Any, status: int = 200) -> Response:
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    # -- OAuth ----------------------------------------------------------------------------------
    def oauth_refused(code: str, message: str) -> Response:
        with state.lock:
            state.counters["oauth_refused"] += 1
        body = {"status": code, "message": message, "correlationId": str(uuid.uuid4())}
        return Response(json.dumps(body), status=400, mimetype="application/json")

    @app.get("/oauth/authorize")
    def oauth_authorize() -> Response:
        """The install page (app.hubspot.com/oauth/authorize). HubSpot shows an error page,
        not a redirect, for an unknown app, an unregistered redirect URL or no scopes; once
        the user approves it sends the browser to redirect_uri?code=...&state=..., and to
        redirect_uri?error=access_denied&state=... when they decline."""
        args = request.args
        if args.get("client_id") != opts.client_id:
            return Response("This app does not exist (unknown client_id).", status=400, mimetype="text/plain")
        redirect_uri = args.get("redirect_uri") or ""
        if redirect_uri not in (opts.redirect_uri, *opts.redirect_uris):
            return Response("The redirect URL does not match any of the app's redirect URLs.", status=400,
                            mimetype="text/plain")
        if not (args.get("scope") or "").split():
            return Response("The install URL names no scopes.", status=400, mimetype="text/plain")
        answer = {"state": args["state"]} if args.get("state") else {}
        if not opts.approve_installs:
            answer = {"error": "access_denied", "error_description": "The user declined to install the app",
                      **answer}
        else:
            code = str(uuid.uuid4())
            with state.lock:
                state.oauth_codes[code] = {"redirect_uri": redirect_uri, "used": False}
            answer = {"code": code, **answer}
        separator = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": redirect_uri + separator + urlencode(answer)})

    @app.post("/oauth/v1/token")
    def oauth_token() -> Response:
        # Form-encoded only: a JSON body carries none of the fields.
        form = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
        grant = form.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            return oauth_refused("BAD_GRANT_TYPE", "missing or unknown grant_type")
        if form.get("client_id") != opts.client_id:
            return oauth_refused("BAD_CLIENT_ID", "missing or unknown client_id")
        if form.get("client_secret") != opts.client_secret:
            return oauth_refused("BAD_CLIENT_SECRET", "missing or invalid client secret")
        with state.lock:
            if grant == "authorization_code":
                entry = state.oauth_codes.get(form.get("code") or "")
                if entry is None or entry["used"]:
                    return oauth_refused("BAD_AUTH_CODE", "missing or unknown auth code")
                if form.get("redirect_uri") != entry["redirect_uri"]:
                    return oauth_refused("BAD_REDIRECT_URI", "redirect_uri does not match the one the code "
                                                             "was issued for")
                entry["used"] = True
                refresh = str(uuid.uuid4())
                state.refresh_tokens[refresh] = {"revoked": False}
                state.counters["oauth_code_exchanges"] += 1
            else:
                refresh = form.get("refresh_token") or ""
                entry = state.refresh_tokens.get(refresh)
                if entry is None or entry["revoked"]:
                    state.counters["oauth_dead_refresh_presented"] += 1
                    return oauth_refused("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
                state.counters["oauth_refreshes"] += 1
            access = state.issue_access_token(refresh)
        # HubSpot's refresh tokens do not rotate: the same one comes back on every refresh.
        return ok({"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                   "expires_in": opts.access_token_ttl})

    # -- objects ---------------------------------------------------------------------------------
    @app.post("/crm/v3/objects/<type_name>/batch/create")
    def batch_create(type_name: str) -> Response:
        type_ = object_type(type_name)
        inputs = inputs_of(body())
        started = _now_iso()
        with state.lock:
            planned = []
            seen: dict[tuple[str, str], int] = {}
            for item in inputs:
                props = state.check_properties(type_, (item or {}).get("properties"), creating=True)
                assocs = state.check_associations(type_, (item or {}).get("associations"))
                for name in state.unique_names(type_):
                    value = props.get(name)
                    if not value:
                        continue
                    existing = state.find_unique(type_, name, value)
                    if existing is None and (name, value) in seen:
                        existing = "pending"
                    if existing is not None:
                        raise ApiError(409, f"{SINGULAR[type_]} already exists. Existing ID: {existing}", "CONFLICT")
                    seen[(name, value)] = 1
                planned.append((props, assocs, (item or {}).get("objectWriteTraceId")))
            results = []
            for props, assocs, trace in planned:
                id_ = state.new_id()
                stamp = _now_iso()
                record = {"id": id_, "createdAt": stamp, "updatedAt": stamp,
                          "properties": {**props, "hs_object_id": id_,
                                         ("hs_createdate" if type_ in ACTIVITIES else "createdate"): stamp}}
                state.objects[type_][id_] = record
                for to_type, to_id, type_id in assocs:
                    state.associate(type_, id_, to_type, to_id, type_id)
                public = state.public(type_, record, sorted(props))
                if trace:
                    public["objectWriteTraceId"] = trace
                results.append(public)
            state.counters[f"created:{type_}"] += len(results)
        return ok({"status": "COMPLETE", "results": results, "requestedAt": started, "startedAt": started,
                   "completedAt": _now_iso()}, 201)

    @app.post("/crm/v3/objects/<type_name>")
    def create_one(type_name: str) -> Response:
        type_ = object_type(type_name)
        data = body()
        with state.lock:
            props = state.check_properties(type_, data.get("properties"), creating=True)
            assocs = state.check_associations(type_, data.get("associations"))
            for name in state.unique_names(type_):
                if props.get(name) and (existing := state.find_unique(type_, name, props[name])):
                    raise ApiError(409, f"{SINGULAR[type_]} already exists. Existing ID: {existing}", "CONFLICT")
            id_ = state.new_id()
            stamp = _now_iso()
            record = {"id": id_, "createdAt": stamp, "updatedAt": stamp,
                      "properties": {**props, "hs_object_id": id_,
                                     ("hs_createdate" if type_ in ACTIVITIES else "createdate"): stamp}}
            state.objects[type_][id_] = record
            for to_type, to_id, type_id in assocs:
                state.associate(type_, id_, to_type, to_id, type_id)
            state.counters[f"created:{type_}"] += 1
            return ok(state.public(type_, record, sorted(props)), 201)

    @app.post("/crm/v3/objects/<type_name>/batch/read")
    def batch_read(type_name: str) -> Response:
        type_ = object_type(type_name)
        data = body()
        inputs = inputs_of(data)
        id_property = data.get("idProperty")
        wanted = list(data.get("properties") or [])
        with state.lock:
            if id_property and id_property not in state.unique_names(type_) and id_property != "hs_object_id":
                raise ApiError(400, f"{id_property} is not a unique identifier property for {type_}", "VALIDATION_ERROR")
            results, missing = [], []
            for item in inputs:
                key = str((item or {}).get("id") or "")
                id_ = state.find_unique(type_, id_property, key) if id_property and id_property != "hs_object_id" else key
                record = state.objects[type_].get(id_ or "")
                if record is None:
                    missing.append(key)
                else:
                    results.append(state.public(type_, record, wanted))
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": _now_iso(),
                                   "completedAt": _now_iso()}
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                                  "message": "Could not get some " + type_ + " objects, they may be deleted or not exist. "
                                             "Check that ids are valid.", "context": {"ids": missing}}]
            return ok(payload, 207)
        return ok(payload)

    @app.post("/crm/v3/objects/<type_name>/batch/update")
    def batch_update(type_name: str) -> Response:
        type_ = object_type(type_name)
        inputs = inputs_of(body())
        with state.lock:
            ids = [str((i or {}).get("id") or "") for i in inputs]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ApiError(400, f"Duplicate IDs found in batch input: {dupes}. IDs must be unique", "VALIDATION_ERROR")
            missing = [i for i in ids if i not in state.objects[type_]]
            if missing:
                raise ApiError(404, f"Object not found. objectId are usually numeric. ids: {missing}", "OBJECT_NOT_FOUND")
            planned = [(i, state.check_properties(type_, (item or {}).get("properties"), creating=False,
                                                  current=state.objects[type_][i]["properties"]))
                       for i, item in zip(ids, inputs)]
            results = []
            for id_, props in planned:
                record = state.objects[type_][id_]
                before = record["properties"].get("dealstage")
                owner_before = record["properties"].get("hubspot_owner_id")
                record["properties"].update(props)
                record["updatedAt"] = _now_iso()
                if type_ == "deals" and "dealstage" in props and props["dealstage"] != before:
                    _queue_stage_change(state, id_, props["dealstage"])
                if type_ == "deals" and "hubspot_owner_id" in props and props["hubspot_owner_id"] != owner_before:
                    _queue_deal_change(state, id_, "hubspot_owner_id", props["hubspot_owner_id"] or "",
                                       "INTEGRATION")
                results.append(state.public(type_, record, sorted(props)))
            state.counters[f"updated:{type_}"] += len(results)
        return ok({"status": "COMPLETE", "results": results, "startedAt": _now_iso(), "completedAt": _now_iso()})

    @app.get("/crm/v3/objects/<type_name>/<object_id>")
    def read_one(type_name: str, object_id: str) -> Response:
        type_ = object_type(type_name)
        wanted = [p for p in request.args.get("properties", "").split(",") if p]
        with state.lock:
            record = state.objects[type_].get(object_id)
            if record is None:
                raise ApiError(404, "resource not found", "OBJECT_NOT_FOUND")
            return ok(state.public(type_, record, wanted))

    @app.get("/crm/v3/objects/<type_name>")
    def list_objects(type_name: str) -> Response:
        type_ = object_type(type_name)
        limit = min(int(request.args.get("limit", 10)), 100)
        after = int(request.args.get("after", 0) or 0)
        wanted = [p for p in request.args.get("properties", "").split(",") if p]
        with state.lock:
            records = sorted(state.objects[type_].values(), key=lambda r: int(r["id"]))
            page = records[after:after + limit]
            payload: dict[str, Any] = {"results": [state.public(type_, r, wanted) for r in page]}
            if after + limit < len(records):
                payload["paging"] = {"next": {"after": str(after + limit)}}
        return ok(payload)

    @app.post("/crm/v3/objects/<type_name>/search")
    def search(type_name: str) -> Response:
        type_ = object_type(type_name)
        data = body()
        limit = int(data.get("limit", 10))
        if limit > SEARCH_LIMIT or limit < 0:
            raise ApiError(400, f"limit must be between 0 and {SEARCH_LIMIT}", "VALIDATION_ERROR")
        groups = data.get("filterGroups") or []
        if len(groups) > SEARCH_MAX_GROUPS:
            raise ApiError(400, f"Too many filter groups ({len(groups)}); the limit is {SEARCH_MAX_GROUPS}", "VALIDATION_ERROR")
        total_filters = sum(len(g.get("filters") or []) for g in groups)
        if total_filters > SEARCH_MAX_FILTERS or any(len(g.get("filters") or []) > SEARCH_MAX_FILTERS_PER_GROUP for g in groups):
            raise ApiError(400, "Too many filters in the search request", "VALIDATION_ERROR")
        with state.lock:
            for g in groups:
                for f in g.get("filters") or []:
                    if f.get("propertyName") not in state.properties[type_]:
                        raise ApiError(400, f"There was a problem with the request: property "
                                            f"{f.get('propertyName')!r} does not exist", "VALIDATION_ERROR")
                    if f.get("operator") in ("IN", "NOT_IN") and len(f.get("values") or []) > SEARCH_MAX_VALUES:
                        raise ApiError(400, f"IN filters take at most {SEARCH_MAX_VALUES} values", "VALIDATION_ERROR")
            records = [r for r in state.objects[type_].values() if _matches(r, groups)]
            sorts = data.get("sorts") or []
            name, descending = "hs_object_id", False
            if sorts:
                first = sorts[0]
                if isinstance(first, str):
                    name, descending = first.lstrip("-"), first.startswith("-")
                else:
                    name, descending = first.get("propertyName", name), first.get("direction") == "DESCENDING"
            key = (lambda r: int(r["id"])) if name == "hs_object_id" else (lambda r: (r["properties"].get(name) or "", int(r["id"])))
            records.sort(key=key, reverse=descending)
            after = int(data.get("after") or 0)
            page = records[after:after + limit]
            wanted = list(data.get("properties") or [])
            payload: dict[str, Any] = {"total": len(records), "results": [state.public(type_, r, wanted) for r in page]}
            if after + limit < len(records):
                payload["paging"] = {"next": {"after": str(after + limit)}}
        return ok(payload)

    # -- associations v4 ------------------------------------------------------------------------
    @app.post("/crm/v4/associations/<from_name>/<to_name>/batch/read")
    def assoc_read(from_name: str, to_name: str) -> Response:
        from_type, to_type = object_type(from_name), object_type(to_name)
        inputs = body().get("inputs") or []
        if len(inputs) > 1000:
            raise ApiError(400, "The maximum number of inputs supported in a batch request is 1000.", "VALIDATION_ERROR")
        results, missing = [], []
        with state.lock:
            for item in inputs:
                from_id = str((item or {}).get("id") or "")
                linked = sorted(((t, i), ty) for (t, i), ty in state.associations.get((from_type, from_id), {}).items()
                                if t == to_type)
                if not linked:
                    missing.append(from_id)
                    continue
                page = linked[:ASSOCIATION_PAGE]
                result: dict[str, Any] = {"from": {"id": from_id}, "to": [
                    {"toObjectId": int(i), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": ty, "label": None}]}
                    for (_, i), ty in page]}
                if len(linked) > ASSOCIATION_PAGE:
                    result["paging"] = {"next": {"after": str(ASSOCIATION_PAGE)}}
                results.append(result)
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": _now_iso(), "completedAt": _now_iso()}
        if missing:
            payload["numErrors"] = len(missing)
            payload["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                                  "message": f"No {to_type} is associated with {from_type} {m}.",
                                  "context": {"fromObjectId": [m]}} for m in missing]
            return ok(payload, 207)
        return ok(payload)

    @app.get("/crm/v4/objects/<from_name>/<object_id>/associations/<to_name>")
    def assoc_list(from_name: str, object_id: str, to_name: str) -> Response:
        from_type, to_type = object_type(from_name), object_type(to_name)
        limit = min(int(request.args.get("limit", 500)), 500)
        after = int(request.args.get("after", 0) or 0)
        with state.lock:
            linked = sorted(((t, i), ty) for (t, i), ty in state.associations.get((from_type, object_id), {}).items()
                            if t == to_type)
        page = linked[after:after + limit]
        payload: dict[str, Any] = {"results": [
            {"toObjectId": int(i), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": ty, "label": None}]}
            for (_, i), ty in page]}
        if after + limit < len(linked):
            payload["paging"] = {"next": {"after": str(after + limit)}}
        return ok(payload)

    def _assoc_create(from_name: str, to_name: str, default: bool) -> Response:
        from_type, to_type = object_type(from_name), object_type(to_name)
        inputs = body().get("inputs") or []
        if not inputs or len(inputs) > 2000:
            raise ApiError(400, "inputs must hold between 1 and 2000 associations", "VALIDATION_ERROR")
        results = []
        with state.lock:
            planned = []
            for item in inputs:
                a = str(((item or {}).get("from") or {}).get("id") or "")
                b = str(((item or {}).get("to") or {}).get("id") or "")
                if a not in state.objects[from_type] or b not in state.objects[to_type]:
                    raise ApiError(400, f"Object {from_type} {a!r} or {to_type} {b!r} does not exist", "VALIDATION_ERROR")
                types = [{"associationCategory": "HUBSPOT_DEFINED",
                          "associationTypeId": DEFAULT_TYPE[(from_type, to_type)]}] if default else (item.get("types") or [])
                for t in types:
                    pair = ASSOCIATION_TYPES.get(t.get("associationTypeId"))
                    if t.get("associationCategory") != "HUBSPOT_DEFINED" or pair != (from_type, to_type):
                        raise ApiError(400, f"{t.get('associationCategory')} association type "
                                            f"{t.get('associationTypeId')} is not valid from {from_type} to {to_type}",
                                       "VALIDATION_ERROR")
                    planned.append((a, b, t["associationTypeId"]))
            for a, b, type_id in planned:
                state.associate(from_type, a, to_type, b, type_id)
                results.append({"fromObjectTypeId": TYPES[from_type], "fromObjectId": int(a),
                                "toObjectTypeId": TYPES[to_type], "toObjectId": int(b), "labels": []})
        return ok({"status": "COMPLETE", "results": results, "startedAt": _now_iso(), "completedAt": _now_iso()}, 201)

    @app.post("/crm/v4/associations/<from_name>/<to_name>/batch/archive")
    def assoc_archive(from_name: str, to_name: str) -> Response:
        """Remove every association between each pair (both directions); 204 No Content."""
        from_type, to_type = object_type(from_name), object_type(to_name)
        inputs = body().get("inputs") or []
        if not inputs or len(inputs) > 2000:
            raise ApiError(400, "inputs must hold between 1 and 2000 associations", "VALIDATION_ERROR")
        with state.lock:
            for item in inputs:
                a = str(((item or {}).get("from") or {}).get("id") or "")
                for target in (item or {}).get("to") or []:
                    b = str((target or {}).get("id") or "")
                    state.associations.get((from_type, a), {}).pop((to_type, b), None)
                    state.associations.get((to_type, b), {}).pop((from_type, a), None)
        return Response(status=204)

    @app.post("/crm/v4/associations/<from_name>/<to_name>/batch/create")
    def assoc_create(from_name: str, to_name: str) -> Response:
        return _assoc_create(from_name, to_name, False)

    @app.post("/crm/v4/associations/<from_name>/<to_name>/batch/associate/default")
    def assoc_default(from_name: str, to_name: str) -> Response:
        return _assoc_create(from_name, to_name, True)

    # -- account, pipelines, owners, properties ----------------------------------------------------
    @app.get("/account-info/v3/details")
    def account() -> Response:
        return ok({"portalId": state.portal_id, "accountType": "STANDARD", "timeZone": "Europe/Berlin",
                   "companyCurrency": "EUR", "additionalCurrencies": [], "utcOffset": "+01:00",
                   "utcOffsetMilliseconds": 3600000, "uiDomain": "app-eu1.hubspot.com", "dataHostingLocation": "eu1"})

    @app.get("/crm/v3/pipelines/<type_name>")
    def pipelines(type_name: str) -> Response:
        if object_type(type_name) != "deals":
            return ok({"results": []})
        return ok({"results": state.pipelines})

    @app.get("/crm/v3/owners")
    @app.get("/crm/v3/owners/")
    def owners() -> Response:
        limit = min(int(request.args.get("limit", 100)), 500)
        after = int(request.args.get("after", 0) or 0)
        email = request.args.get("email")
        rows = [o for o in state.owners if not email or o["email"] == email]
        payload: dict[str, Any] = {"results": rows[after:after + limit]}
        if after + limit < len(rows):
            payload["paging"] = {"next": {"after": str(after + limit), "link": "?after=" + str(after + limit)}}
        return ok(payload)

    @app.get("/crm/v3/properties/<type_name>")
    def list_properties(type_name: str) -> Response:
        type_ = object_type(type_name)
        with state.lock:
            return ok({"results": list(state.properties[type_].values())})

    @app.get("/crm/v3/properties/<type_name>/<name>")
    def read_property(type_name: str, name: str) -> Response:
        type_ = object_type(type_name)
        with state.lock:
            definition = state.properties[type_].get(name)
        if definition is None:
            raise ApiError(404, f"Unable to find property with name '{name}' for object type {TYPES[type_]}",
                           "OBJECT_NOT_FOUND")
        return ok(definition)

    @app.post("/crm/v3/properties/<type_name>")
    def create_property(type_name: str) -> Response:
        type_ = object_type(type_name)
        data = body()
        name = str(data.get("name") or "")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not data.get(k)]
        if missing:
            raise ApiError(400, f"Missing required field(s): {', '.join(missing)}", "VALIDATION_ERROR")
        if not name.replace("_", "").isalnum() or not name[0].isalpha() or name != name.lower():
            raise ApiError(400, f"Property name {name!r} is invalid: use lowercase letters, digits and underscores",
                           "VALIDATION_ERROR")
        if data["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise ApiError(400, f"Unknown property type {data['type']!r}", "VALIDATION_ERROR")
        with state.lock:
            if name in state.properties[type_]:
                raise ApiError(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
            definition = _prop(name, data["label"], data["type"], data["fieldType"], data["groupName"],
                               [o.get("value") for o in data.get("options") or []], bool(data.get("hasUniqueValue")))
            definition.update({"hubspotDefined": False, "calculated": False, "description": data.get("description", "")})
            definition["modificationMetadata"] = {"readOnlyValue": False, "readOnlyDefinition": False, "archivable": True}
            state.properties[type_][name] = definition
        return ok(definition, 201)

    _register_inbox(app, state, ok, body)
    return app


def _register_inbox(app: Flask, state: State, ok: Any, body: Any) -> None:
    from connectors.hubspot import emulator_inbox
    emulator_inbox.register(app, state, ok, body)


def _route_name(path: str) -> str:
    parts = [("{id}" if p.isdigit() else p) for p in path.split("/")]
    return "/".join(parts)


def _matches(record: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
    if not groups:
        return True
    props = record["properties"]
    for group in groups:
        if all(_filter_ok(props, f) for f in group.get("filters") or []):
            return True
    return False


def _filter_ok(props: dict[str, Any], f: dict[str, Any]) -> bool:
    value = props.get(f.get("propertyName"))
    op = f.get("operator", "EQ")
    target = f.get("value")
    if op == "EQ":
        return value is not None and str(value).lower() == str(target).lower()
    if op == "NEQ":
        return value is None or str(value).lower() != str(target).lower()
    if op == "IN":
        return value is not None and str(value).lower() in {str(v).lower() for v in f.get("values") or []}
    if op == "NOT_IN":
        return value is None or str(value).lower() not in {str(v).lower() for v in f.get("values") or []}
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op == "CONTAINS_TOKEN":
        return value is not None and str(target).lower().strip("*") in str(value).lower()
    if op in ("GT", "GTE", "LT", "LTE"):
        try:
            a, b = float(value), float(target)
        except (TypeError, ValueError):
            return False
        return {"GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}[op]
    raise ApiError(400, f"Unknown filter operator {op!r}", "VALIDATION_ERROR")


def _queue_stage_change(state: State, deal_id: str, stage: str) -> None:
    _queue_deal_change(state, deal_id, "dealstage", stage)


def _queue_deal_change(state: State, deal_id: str, name: str, value: str, source: str = "CRM_UI") -> None:
    """A deal.propertyChange event for the subscribed targets (dealstage, hubspot_owner_id)."""
    now_ms = int(time.time() * 1000)
    state.pending_webhooks.append({
        "eventId": state.rng.randrange(10**9, 10**10), "subscriptionId": 2_398_551, "portalId": state.portal_id,
        "appId": 3_120_455, "occurredAt": now_ms, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
        "objectId": int(deal_id), "propertyName": name, "propertyValue": value,
        "changeSource": source, "sourceId": "userId:9001" if source == "CRM_UI" else str(state.portal_id),
    })


class EmulatorHandle:
    """What tests and the benchmark hold: the base URL, state, counts and helpers."""

    def __init__(self, state: State, base_url: str):
        self.state = state
        self.base_url = base_url

    @property
    def token(self) -> str:
        return self.state.options.token

    @property
    def client_secret(self) -> str:
        return self.state.options.client_secret

    def stats(self) -> dict[str, Any]:
        c = self.state.counters
        with self.state.lock:
            return {"requests": c["requests"], "accepted": c["accepted"], "rate_limited": c["rate_limited"],
                    "search_rate_limited": c["search_rate_limited"], "injected_429": c["injected_429"],
                    "injected_5xx": c["injected_5xx"], "slow_answers": c["slow_answers"],
                    "by_endpoint": {k[5:]: v for k, v in c.items() if k.startswith("path:")}}

    def created(self, type_: str) -> int:
        with self.state.lock:
            return self.state.counters[f"created:{ALIASES[type_]}"]

    def counts(self) -> dict[str, int]:
        with self.state.lock:
            return {"contacts": len(self.state.objects["contacts"]), "deals": len(self.state.objects["deals"]),
                    "notes": len(self.state.objects["communications"])}

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, with the ids of the deals and contacts it is associated to."""
        with self.state.lock:
            out = []
            for record in sorted(self.state.objects["tasks"].values(), key=lambda r: int(r["id"])):
                linked = self.state.associations.get(("tasks", record["id"]), {})
                out.append({**json.loads(json.dumps(record)),
                            "deals": sorted(i for (t, i) in linked if t == "deals"),
                            "contacts": sorted(i for (t, i) in linked if t == "contacts")})
            return out

    def records(self, type_: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [json.loads(json.dumps(r)) for r in self.state.objects[ALIASES[type_]].values()]

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, int]:
        with self.state.lock:
            return {i: ty for (t, i), ty in self.state.associations.get((ALIASES[from_type], str(from_id)), {}).items()
                    if t == ALIASES[to_type]}

    @property
    def inbox(self) -> Any:
        """The Conversations inbox (emulator_inbox.InboxHandle)."""
        from connectors.hubspot.emulator_inbox import InboxHandle
        return InboxHandle(self.state)

    def set_chaos(self, **changes: Any) -> None:
        with self.state.lock:
            for key, value in changes.items():
                setattr(self.state.options, key, value)

    def revoke(self, token: str | None = None) -> None:
        with self.state.lock:
            self.state.tokens.discard(token or self.token)

    # -- OAuth ---------------------------------------------------------------------------------
    def issue_code(self, redirect_uri: str | None = None) -> str:
        """The code HubSpot appends to the redirect URI after a user installs the app."""
        code = str(uuid.uuid4())
        with self.state.lock:
            self.state.oauth_codes[code] = {"redirect_uri": redirect_uri or self.state.options.redirect_uri,
                                            "used": False}
        return code

    def expire_access_tokens(self) -> None:
        """Every OAuth access token issued so far expires now (as 30 minutes later)."""
        with self.state.lock:
            for entry in self.state.access_tokens.values():
                entry["expires_at"] = min(entry["expires_at"], time.time() - 1)

    def uninstall(self) -> None:
        """The app is uninstalled from the account: every refresh and access token dies."""
        with self.state.lock:
            for entry in list(self.state.refresh_tokens.values()) + list(self.state.access_tokens.values()):
                entry["revoked"] = True

    def live_refresh_tokens(self) -> list[str]:
        with self.state.lock:
            return sorted(t for t, e in self.state.refresh_tokens.items() if not e["revoked"])

    def oauth_stats(self) -> dict[str, int]:
        c = self.state.counters
        with self.state.lock:
            return {k: c[k] for k in ("oauth_code_exchanges", "oauth_refreshes", "oauth_refused",
                                      "oauth_dead_refresh_presented", "expired_token_rejections")}

    def add_contact(self, **properties: str) -> str:
        """A contact typed in by a salesperson (no request counted)."""
        with self.state.lock:
            id_ = self.state.new_id()
            stamp = _now_iso()
            self.state.objects["contacts"][id_] = {"id": id_, "createdAt": stamp, "updatedAt": stamp,
                                                   "properties": {**properties, "hs_object_id": id_, "createdate": stamp}}
            return id_

    def add_property(self, object_type: str, name: str, *, unique: bool = False) -> None:
        type_ = ALIASES[object_type]
        with self.state.lock:
            self.state.properties[type_][name] = _prop(name, name, group="", unique=unique)

    # -- outbound webhooks ---------------------------------------------------------------------------
    def subscribe(self, url: str, client_secret: str | None = None) -> None:
        with self.state.lock:
            self.state.webhook_targets.append((url, client_secret or self.client_secret))

    def move_deal(self, deal_id: str, stage: str, **props: str) -> None:
        """A salesperson drags the deal to another stage in HubSpot, perhaps setting other
        properties with it (amount="22500")."""
        with self.state.lock:
            record = self.state.objects["deals"][str(deal_id)]
            record["properties"].update(props)
            if record["properties"].get("dealstage") != stage:
                record["properties"]["dealstage"] = stage
                _queue_stage_change(self.state, str(deal_id), stage)

    def hand_over(self, deal_id: str, owner_id: str) -> None:
        """A manager makes another owner responsible for the deal in HubSpot."""
        with self.state.lock:
            record = self.state.objects["deals"][str(deal_id)]
            if record["properties"].get("hubspot_owner_id") != owner_id:
                record["properties"]["hubspot_owner_id"] = owner_id
                _queue_deal_change(self.state, str(deal_id), "hubspot_owner_id", owner_id)

    def deliver_webhooks(self, *, attempts: int = 3, timeout: float = 5.0) -> list[int]:
        """POST queued events (one signed array per target, as HubSpot batches them);
        retried while the target answers non-2xx. Returns the final status per target."""
        with self.state.lock:
            events, self.state.pending_webhooks = self.state.pending_webhooks, []
            targets = list(self.state.webhook_targets)
        statuses = []
        for url, secret in targets:
            if not events:
                break
            status = 0
            for attempt in range(attempts):
                body = json.dumps([{**e, "attemptNumber": attempt} for e in events]).encode()
                headers = {"Content-Type": "application/json",
                           **signature.headers(secret, "POST", url, body, int(time.time() * 1000))}
                try:
                    status = requests.post(url, data=body, headers=headers, timeout=timeout).status_code
                except requests.RequestException:
                    status = 0
                self.state.webhook_log.append({"url": url, "status": status, "events": len(events)})
                if 200 <= status < 300:
                    break
            statuses.append(status)
        return statuses


@contextlib.contextmanager
def serve(**options: Any) -> Iterator[EmulatorHandle]:
    """Run the emulator on 127.0.0.1 with an ephemeral port, in a thread."""
    state = State(Options(**options))
    server = make_server("127.0.0.1", 0, create_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="hubspot-emulator", daemon=True)
    thread.start()
    try:
        yield EmulatorHandle(state, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(5)
