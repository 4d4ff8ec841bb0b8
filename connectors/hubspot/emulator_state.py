"""The emulated HubSpot account's data and rules: the object types and their association
type ids, the default properties, pipelines and owners, the options (limits, chaos, OAuth
settings) and the State every route group reads and writes under its lock. Property and
association checks live here so that single and batch routes refuse the same way."""
from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectors.hubspot.emulator_errors import ApiError
from connectors.hubspot.emulator_inbox import InboxState

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


def prop(name: str, label: str, type_: str = "string", field_type: str = "text", group: str = "",
          options: list[str] | None = None, unique: bool = False, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "label": label, "type": type_, "fieldType": field_type, "groupName": group,
            "hasUniqueValue": unique, "options": [{"label": o, "value": o, "hidden": False} for o in options or []],
            "modificationMetadata": {"readOnlyValue": read_only, "readOnlyDefinition": True, "archivable": False},
            "calculated": read_only, "hubspotDefined": True, "archived": False,
            "createdAt": "2019-08-06T02:41:08.029Z", "updatedAt": "2019-08-06T02:41:08.029Z"}


def default_properties() -> dict[str, dict[str, dict[str, Any]]]:
    contacts = [
        prop("email", "Email", group="contactinformation"),
        prop("firstname", "First Name", group="contactinformation"),
        prop("lastname", "Last Name", group="contactinformation"),
        prop("phone", "Phone Number", field_type="phonenumber", group="contactinformation"),
        prop("mobilephone", "Mobile Phone Number", field_type="phonenumber", group="contactinformation"),
        prop("company", "Company Name", group="contactinformation"),
        prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation",
              ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
               "evangelist", "other"]),
        prop("hubspot_owner_id", "Contact owner", "enumeration", "select", "contactinformation"),
        prop("hs_lead_status", "Lead Status", "enumeration", "radio", "contactinformation",
              ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
               "BAD_TIMING"]),
    ]
    deals = [
        prop("dealname", "Deal Name", group="dealinformation"),
        prop("pipeline", "Pipeline", "enumeration", "select", "dealinformation"),
        prop("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation"),
        prop("amount", "Amount", "number", "number", "dealinformation"),
        prop("closedate", "Close Date", "datetime", "date", "dealinformation"),
        prop("hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation"),
        prop("dealtype", "Deal Type", "enumeration", "radio", "dealinformation", ["newbusiness", "existingbusiness"]),
        prop("description", "Deal Description", "string", "textarea", "dealinformation"),
        prop("deal_currency_code", "Currency", "enumeration", "select", "dealinformation"),
        prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", "dealinformation", read_only=True),
        prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", "dealinformation", read_only=True),
    ]
    comms = [
        prop("hs_communication_channel_type", "Channel type", "enumeration", "select", "communication",
              ["WHATS_APP", "LINKEDIN_MESSAGE", "SMS"]),
        prop("hs_communication_logged_from", "Logged from", "enumeration", "select", "communication", ["CRM"]),
        prop("hs_communication_body", "Body", "string", "html", "communication"),
        prop("hs_timestamp", "Activity date", "datetime", "date", "communication"),
        prop("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "communication"),
    ]
    tasks = [
        prop("hs_timestamp", "Due date", "datetime", "date", "task"),
        prop("hs_task_subject", "Task Title", "string", "text", "task"),
        prop("hs_task_body", "Notes", "string", "html", "task"),
        prop("hs_task_status", "Task Status", "enumeration", "select", "task",
              ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]),
        prop("hs_task_priority", "Priority", "enumeration", "select", "task", ["NONE", "LOW", "MEDIUM", "HIGH"]),
        prop("hs_task_type", "Task Type", "enumeration", "select", "task", ["EMAIL", "CALL", "TODO"]),
        prop("hs_task_reminders", "Reminder", "string", "text", "task"),
        prop("hubspot_owner_id", "Assigned to", "enumeration", "select", "task"),
    ]
    notes = [
        prop("hs_timestamp", "Activity date", "datetime", "date", "note"),
        prop("hs_note_body", "Note body", "string", "html", "note"),
        prop("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "note"),
    ]
    out = {"contacts": {p["name"]: p for p in contacts}, "deals": {p["name"]: p for p in deals},
           "communications": {p["name"]: p for p in comms}, "tasks": {p["name"]: p for p in tasks},
           "notes": {p["name"]: p for p in notes}}
    for type_, props in out.items():
        for name in READ_ONLY:
            props[name] = prop(name, name, "datetime" if "date" in name else "string", "text", "", read_only=True)
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


def now_iso() -> str:
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

    def insert(self, type_: str, props: dict[str, str], assocs: list[tuple[str, str, int]]) -> dict[str, Any]:
        """Store a checked new record with its associations: the single and the batch create share it."""
        id_ = self.new_id()
        stamp = now_iso()
        record = {"id": id_, "createdAt": stamp, "updatedAt": stamp,
                  "properties": {**props, "hs_object_id": id_,
                                 ("hs_createdate" if type_ in ACTIVITIES else "createdate"): stamp}}
        self.objects[type_][id_] = record
        for to_type, to_id, type_id in assocs:
            self.associate(type_, id_, to_type, to_id, type_id)
        return record

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


def queue_stage_change(state: State, deal_id: str, stage: str) -> None:
    queue_deal_change(state, deal_id, "dealstage", stage)


def queue_deal_change(state: State, deal_id: str, name: str, value: str, source: str = "CRM_UI") -> None:
    """A deal.propertyChange event for the subscribed targets (dealstage, hubspot_owner_id)."""
    now_ms = int(time.time() * 1000)
    state.pending_webhooks.append({
        "eventId": state.rng.randrange(10**9, 10**10), "subscriptionId": 2_398_551, "portalId": state.portal_id,
        "appId": 3_120_455, "occurredAt": now_ms, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
        "objectId": int(deal_id), "propertyName": name, "propertyValue": value,
        "changeSource": source, "sourceId": "userId:9001" if source == "CRM_UI" else str(state.portal_id),
    })
