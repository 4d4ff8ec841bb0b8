"""The emulated amoCRM account: its data and the rules amoCRM applies to writes.

Kept apart from the HTTP layer (emulator.py) so the validation rules read like the
documentation they come from: leads/complex takes at most 50 deals with one contact each,
custom fields are addressed by field_id or field_code, PHONE values need a known
enum_code, stages belong to pipelines, 142/143 exist in every pipeline.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")
WON, LOST = 142, 143
COMPLEX_MAX = 50
NOTE_TYPES = ("common", "call_in", "call_out", "service_message", "geolocation", "sms_in", "sms_out",
              "extended_service_message", "attachment")
PHONE_ENUMS = ("WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER")
TRACKING_CODES = ("UTM_CONTENT", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_SOURCE", "UTM_TERM", "UTM_REFERRER",
                  "ROISTAT", "REFERRER", "OPENSTAT_SERVICE", "OPENSTAT_CAMPAIGN", "OPENSTAT_AD",
                  "OPENSTAT_SOURCE", "FROM", "GCLIENTID", "_YM_UID", "_YM_COUNTER", "GCLID", "YCLID",
                  "FBCLID")


class Invalid(Exception):
    """Validation errors of one write, in amoCRM's shape (request_id -> errors)."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("validation failed")
        self.errors = errors


def _err(request_id: str, path: str, detail: str, code: str = "NotSupportedChoice") -> dict[str, Any]:
    return {"request_id": request_id, "errors": [{"code": code, "path": path, "detail": detail}]}


def _all_valid(items: Any, check: Callable[[str, Any], T], *, most: int | None = None) -> list[tuple[str, T]]:
    """amoCRM's batch writes validate every item before applying any: (request id,
    `check(request id, item)`) for each, or one Invalid naming every item's problems
    (`check` raises Invalid for its item)."""
    if not isinstance(items, list) or not items:
        raise Invalid([_err("0", "", "This value should be a non-empty array.", "InvalidType")])
    if most is not None and len(items) > most:
        raise Invalid([_err("0", "", f"This collection should contain {most} elements or less.",
                            "TooManyElements")])
    problems: list[dict[str, Any]] = []
    planned: list[tuple[str, T]] = []
    for i, body in enumerate(items):
        rid = str(body.get("request_id", i)) if isinstance(body, dict) else str(i)
        try:
            planned.append((rid, check(rid, body)))
        except Invalid as exc:
            problems.extend(exc.errors)
    if problems:
        raise Invalid(problems)
    return planned


def _merge_custom_fields(entity: dict[str, Any], values: list[dict[str, Any]] | None) -> None:
    """A custom field sent replaces that field's values; fields not sent stay as they are."""
    if values is not None:
        by_id = {c["field_id"]: c for c in entity["custom_fields_values"]}
        by_id.update({c["field_id"]: c for c in values})
        entity["custom_fields_values"] = list(by_id.values())


def _note(table: dict[int, dict[str, Any]], entity_id: int | None, rid: str,
          body: Any) -> tuple[int, str, dict[str, Any], dict[str, Any]]:
    """One note checked: (entity id, note type, params, body); `entity_id` from the URL, else the body's."""
    if not isinstance(body, dict):
        raise Invalid([_err(rid, "", "This value should be of type object.", "InvalidType")])
    target = entity_id if entity_id is not None else body.get("entity_id")
    if target not in table or table[target].get("is_deleted"):
        raise Invalid([_err(rid, "entity_id", "The value you selected is not a valid choice.")])
    note_type = body.get("note_type")
    params = body.get("params") or {}
    if note_type not in NOTE_TYPES:
        raise Invalid([_err(rid, "note_type", "The value you selected is not a valid choice.")])
    if note_type in ("common", "service_message", "extended_service_message", "sms_in", "sms_out",
                     "geolocation") and not str(params.get("text") or "").strip():
        raise Invalid([_err(rid, "params.text", "This value should not be blank.", "NotBlank")])
    if note_type in ("service_message", "extended_service_message") and not params.get("service"):
        raise Invalid([_err(rid, "params.service", "This value should not be blank.", "NotBlank")])
    return target, note_type, params, body


def digits(text: Any) -> str:
    return re.sub(r"\D", "", str(text or ""))


@dataclass
class Field:
    id: int
    name: str
    type: str
    code: str | None = None
    enums: list[dict[str, Any]] = field(default_factory=list)

    def json(self, entity: str) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "code": self.code, "sort": 500,
                "is_api_only": False, "enums": self.enums or None, "group_id": None,
                "required_statuses": [], "is_deletable": self.code is None, "is_predefined": self.code is not None,
                "entity_type": entity, "_links": {"self": {"href": f"/api/v4/{entity}/custom_fields/{self.id}"}}}


def default_lead_fields() -> list[Field]:
    fields_ = [Field(600_001 + i, code.lower(), "tracking_data", code) for i, code in enumerate(TRACKING_CODES)]
    fields_.append(Field(583_921, "Order number", "text", "ORDER_NO"))
    fields_.append(Field(583_922, "Delivery date", "text"))
    return fields_


def default_contact_fields() -> list[Field]:
    return [
        Field(100_001, "Phone", "multitext", "PHONE",
              [{"id": 200_001 + i, "value": v, "sort": 2 * (i + 1)} for i, v in enumerate(PHONE_ENUMS)]),
        Field(100_002, "Email", "multitext", "EMAIL",
              [{"id": 200_101 + i, "value": v, "sort": 2 * (i + 1)} for i, v in enumerate(("WORK", "PRIV", "OTHER"))]),
        Field(100_003, "Position", "text", "POSITION"),
    ]


DEFAULT_PIPELINES = [
    {"id": 7_000_001, "name": "Sales", "is_main": True, "statuses": [
        (7_000_011, "First contact"), (7_000_012, "Negotiation"), (7_000_013, "Invoice sent"),
        (7_000_014, "Shipped")]},
    {"id": 7_000_002, "name": "Support", "is_main": False, "statuses": [
        (7_000_021, "New request"), (7_000_022, "In progress")]},
]
DEFAULT_USERS = [
    {"id": 9_000_001, "name": "Olga Admin", "email": "olga@example.com"},
    {"id": 9_000_002, "name": "Ivan Sales", "email": "ivan@example.com"},
    {"id": 9_000_003, "name": "Maria Support", "email": "maria@example.com"},
]


class Store:
    def __init__(self, *, subdomain: str = "emulator", account_id: int = 31_415_926,
                 clock: Callable[[], float] = time.time):
        self.lock = threading.RLock()
        self.clock = clock
        self.subdomain = subdomain
        self.account_id = account_id
        self.users = [dict(u) for u in DEFAULT_USERS]
        self.pipelines = self._pipelines(DEFAULT_PIPELINES)
        self.fields = {"leads": default_lead_fields(), "contacts": default_contact_fields()}
        self.leads: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.tags: dict[str, int] = {}
        self._ids = {"lead": 30_000_000, "contact": 40_000_000, "note": 50_000_000, "tag": 60_000,
                     "task": 70_000_000}
        self.on_status_change: Callable[[dict[str, Any], int, int], None] = lambda lead, old_s, old_p: None
        self.on_note: Callable[[dict[str, Any]], None] = lambda note: None
        self.on_responsible_change: Callable[[dict[str, Any], int], None] = lambda lead, old_user: None

    # -- setup --------------------------------------------------------------------------
    @staticmethod
    def _pipelines(spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for p in spec:
            statuses = [{"id": sid, "name": name, "sort": 10 * (i + 1), "type": 0} for i, (sid, name) in
                        enumerate(p["statuses"])]
            statuses += [{"id": WON, "name": "Closed - won", "sort": 10000, "type": 0},
                         {"id": LOST, "name": "Closed - lost", "sort": 11000, "type": 0}]
            out.append({"id": p["id"], "name": p["name"], "is_main": p["is_main"], "statuses": statuses})
        return out

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def main_pipeline(self) -> dict[str, Any]:
        return next(p for p in self.pipelines if p["is_main"])

    def pipeline(self, pipeline_id: int) -> dict[str, Any] | None:
        return next((p for p in self.pipelines if p["id"] == pipeline_id), None)

    def field(self, entity: str, *, field_id: Any = None, code: Any = None) -> Field | None:
        for f in self.fields[entity]:
            if field_id is not None and str(f.id) == str(field_id):
                return f
            if code is not None and f.code and f.code == str(code).upper():
                return f
        return None

    # -- validation ---------------------------------------------------------------------
    def _custom_fields(self, entity: str, values: Any, rid: str, prefix: str) -> list[dict[str, Any]]:
        if values is None:
            return []
        if not isinstance(values, list):
            raise Invalid([_err(rid, f"{prefix}custom_fields_values", "This value should be of type array.",
                                "InvalidType")])
        out = []
        for i, cf in enumerate(values):
            path = f"{prefix}custom_fields_values.{i}"
            if not isinstance(cf, dict):
                raise Invalid([_err(rid, path, "This value should be of type object.", "InvalidType")])
            f = self.field(entity, field_id=cf.get("field_id"), code=cf.get("field_code"))
            if f is None:
                which = "field_id" if cf.get("field_id") is not None else "field_code"
                raise Invalid([_err(rid, f"{path}.{which}", "The value you selected is not a valid choice.")])
            vals = cf.get("values")
            if not isinstance(vals, list) or not vals:
                raise Invalid([_err(rid, f"{path}.values", "This value should not be blank.", "NotBlank")])
            clean = []
            for j, v in enumerate(vals):
                if not isinstance(v, dict) or v.get("value") in (None, ""):
                    raise Invalid([_err(rid, f"{path}.values.{j}.value", "This value should not be blank.",
                                        "NotBlank")])
                item: dict[str, Any] = {"value": v["value"]}
                if f.enums:
                    enum = next((e for e in f.enums if e["value"] == v.get("enum_code")
                                 or e["id"] == v.get("enum_id")), None)
                    if enum is None and (v.get("enum_code") or v.get("enum_id")):
                        raise Invalid([_err(rid, f"{path}.values.{j}.enum_code",
                                            "The value you selected is not a valid choice.")])
                    enum = enum or f.enums[0]
                    item.update(enum_id=enum["id"], enum_code=enum["value"])
                if f.type in ("text", "tracking_data") and len(str(v["value"])) > 256:
                    raise Invalid([_err(rid, f"{path}.values.{j}.value",
                                        "This value is too long. It should have 256 characters or less.",
                                        "TooLongError")])
                clean.append(item)
            out.append({"field_id": f.id, "field_name": f.name, "field_code": f.code, "field_type": f.type,
                        "values": clean})
        return out

    def _user(self, value: Any, rid: str, path: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid([_err(rid, path, "This value should be of type int.", "InvalidType")])
        if value not in {u["id"] for u in self.users}:
            raise Invalid([_err(rid, path, "The value you selected is not a valid choice.")])
        return value

    def _placement(self, body: dict[str, Any], rid: str, prefix: str = "") -> tuple[int, int]:
        pipeline_id = body.get("pipeline_id")
        status_id = body.get("status_id")
        if pipeline_id is None:
            pipeline = self.main_pipeline()
            if status_id is not None and status_id not in (WON, LOST):
                pipeline = next((p for p in self.pipelines
                                 if any(s["id"] == status_id for s in p["statuses"])), pipeline)
        else:
            pipeline = self.pipeline(pipeline_id) if isinstance(pipeline_id, int) else None
            if pipeline is None:
                raise Invalid([_err(rid, f"{prefix}pipeline_id", "The value you selected is not a valid choice.")])
        if status_id is None:
            return pipeline["id"], pipeline["statuses"][0]["id"]
        if not any(s["id"] == status_id for s in pipeline["statuses"]):
            raise Invalid([_err(rid, f"{prefix}status_id", "The value you selected is not a valid choice.")])
        return pipeline["id"], status_id

    def _tags(self, tags: Any) -> list[dict[str, Any]]:
        out = []
        for t in tags or []:
            name = (t or {}).get("name") if isinstance(t, dict) else None
            if not name:
                continue
            if name not in self.tags:
                self.tags[name] = self.next_id("tag")
            out.append({"id": self.tags[name], "name": name, "color": None})
        return out

    def _new_contact(self, body: dict[str, Any], rid: str, prefix: str, now: int) -> dict[str, Any]:
        cfv = self._custom_fields("contacts", body.get("custom_fields_values"), rid, prefix)
        name = body.get("name") or " ".join(x for x in (body.get("first_name"), body.get("last_name")) if x)
        return {
            "id": None, "name": name or "", "first_name": body.get("first_name") or "",
            "last_name": body.get("last_name") or "",
            "responsible_user_id": self._user(body.get("responsible_user_id"), rid,
                                              f"{prefix}responsible_user_id") or self.users[0]["id"],
            "created_at": now, "updated_at": now, "custom_fields_values": cfv, "lead_ids": [],
            "tags": self._tags((body.get("_embedded") or {}).get("tags")), "is_deleted": False,
        }

    def _new_lead(self, body: dict[str, Any], rid: str, now: int) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Invalid([_err(rid, "", "This value should be of type object.", "InvalidType")])
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 255:
            raise Invalid([_err(rid, "name", "This value should be of type string of at most 255 characters.",
                                "InvalidType")])
        pipeline_id, status_id = self._placement(body, rid)
        for key in ("created_at", "updated_at", "price"):
            if body.get(key) is not None and (not isinstance(body[key], int) or isinstance(body[key], bool)):
                raise Invalid([_err(rid, key, "This value should be of type int.", "InvalidType")])
        return {
            "id": None, "name": name, "price": body.get("price") or 0,
            "responsible_user_id": self._user(body.get("responsible_user_id"), rid, "responsible_user_id")
            or self.users[0]["id"],
            "status_id": status_id, "pipeline_id": pipeline_id,
            "created_at": body.get("created_at") or now, "updated_at": body.get("updated_at") or now,
            "closed_at": now if status_id in (WON, LOST) else None,
            "custom_fields_values": self._custom_fields("leads", body.get("custom_fields_values"), rid, ""),
            "tags": self._tags((body.get("_embedded") or {}).get("tags")), "contact_ids": [],
            "is_deleted": False,
        }

    # -- writes ----------------------------------------------------------------------------
    def add_complex(self, items: Any) -> list[dict[str, Any]]:
        """POST /api/v4/leads/complex: validate everything, then create everything."""
        now = int(self.clock())
        with self.lock:
            planned = _all_valid(items, lambda rid, body: self._complex_item(rid, body, now), most=COMPLEX_MAX)
            out = []
            for rid, (lead, contact) in planned:
                lead["id"] = self.next_id("lead")
                contact_id = None
                if isinstance(contact, dict):
                    contact["id"] = contact_id = self.next_id("contact")
                    self.contacts[contact_id] = contact
                elif contact is not None:
                    contact_id = contact
                if contact_id is not None:
                    lead["contact_ids"].append(contact_id)
                    self.contacts[contact_id]["lead_ids"].append(lead["id"])
                self.leads[lead["id"]] = lead
                out.append({"id": lead["id"], "contact_id": contact_id, "company_id": None,
                            "request_id": [rid], "merged": False})
            return out

    def _complex_item(self, rid: str, body: Any, now: int) -> tuple[dict[str, Any], Any]:
        """One complex item checked: its new lead, and its contact (an id, a new one, or None)."""
        lead = self._new_lead(body, rid, now)
        contacts = (body.get("_embedded") or {}).get("contacts") or []
        if len(contacts) > 1:
            raise Invalid([_err(rid, "_embedded.contacts", "Only one contact can be linked.", "TooManyElements")])
        if not contacts:
            return lead, None
        c = contacts[0]
        if isinstance(c, dict) and c.get("id") is not None:
            if c["id"] not in self.contacts or self.contacts[c["id"]]["is_deleted"]:
                raise Invalid([_err(rid, "_embedded.contacts.0.id", "The value you selected is not a valid choice.")])
            return lead, c["id"]
        return lead, self._new_contact(c, rid, "_embedded.contacts.0.", now)

    def add_contacts(self, items: Any) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not items:
            raise Invalid([_err("0", "", "This value should be a non-empty array.", "InvalidType")])
        now = int(self.clock())
        with self.lock:
            made = []
            for i, body in enumerate(items):
                rid = str(body.get("request_id", i)) if isinstance(body, dict) else str(i)
                made.append((rid, self._new_contact(body if isinstance(body, dict) else {}, rid, "", now)))
            out = []
            for rid, contact in made:
                contact["id"] = self.next_id("contact")
                self.contacts[contact["id"]] = contact
                out.append({"id": contact["id"], "request_id": rid})
            return out

    def update_contacts(self, items: Any) -> list[dict[str, Any]]:
        """PATCH /api/v4/contacts (and /api/v4/contacts/{id}): all validated first. A custom
        field sent replaces that field's values; fields not sent stay as they are."""
        now = int(self.clock())
        with self.lock:
            planned = _all_valid(items, self._contact_change)
            out = []
            for rid, (contact, change) in planned:
                _merge_custom_fields(contact, change.pop("custom_fields_values", None))
                contact.update(change)
                contact["updated_at"] = now
                out.append({"id": contact["id"], "name": contact["name"], "updated_at": now, "request_id": rid})
            return out

    def _contact_change(self, rid: str, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """One contact update checked: the contact and what changes in it."""
        if not isinstance(body, dict) or body.get("id") not in self.contacts or self.contacts[body["id"]]["is_deleted"]:
            raise Invalid([_err(rid, "id", "The value you selected is not a valid choice.")])
        change: dict[str, Any] = {}
        for key in ("name", "first_name", "last_name"):
            if key in body:
                if not isinstance(body[key], str) or len(body[key]) > 255:
                    raise Invalid([_err(rid, key, "This value should be of type string of at most 255 characters.",
                                        "InvalidType")])
                change[key] = body[key]
        if "responsible_user_id" in body:
            change["responsible_user_id"] = self._user(body["responsible_user_id"], rid, "responsible_user_id")
        if "custom_fields_values" in body:
            change["custom_fields_values"] = self._custom_fields("contacts", body["custom_fields_values"], rid, "")
        return self.contacts[body["id"]], change

    def link(self, entity: str, entity_id: int, items: Any, *, unlink: bool = False) -> list[dict[str, Any]] | None:
        """POST /api/v4/{leads|contacts}/{id}/link (and /unlink): a deal and its contacts,
        either side. Linking what is linked changes nothing; None when the entity is unknown."""
        table, other_table = (self.leads, self.contacts) if entity == "leads" else (self.contacts, self.leads)
        wanted = "contacts" if entity == "leads" else "leads"
        if not isinstance(items, list) or not items:
            raise Invalid([_err("0", "", "This value should be a non-empty array.", "InvalidType")])
        with self.lock:
            this = table.get(entity_id)
            if this is None or this.get("is_deleted"):
                return None
            problems, pairs = [], []
            for i, body in enumerate(items):
                target = body.get("to_entity_id") if isinstance(body, dict) else None
                if not isinstance(body, dict) or body.get("to_entity_type") != wanted:
                    problems.append(_err(str(i), "to_entity_type", f"This value should be {wanted!r}."))
                elif not isinstance(target, int) or target not in other_table or other_table[target].get("is_deleted"):
                    problems.append(_err(str(i), "to_entity_id", "This entity is not found.", "NotFound"))
                else:
                    pairs.append((target, body.get("metadata") or {}))
            if problems:
                raise Invalid(problems)
            out = []
            for target, metadata in pairs:
                lead, contact = (this, other_table[target]) if entity == "leads" else (other_table[target], this)
                if unlink:
                    if contact["id"] in lead["contact_ids"]:
                        lead["contact_ids"].remove(contact["id"])
                        contact["lead_ids"].remove(lead["id"])
                    continue
                if contact["id"] not in lead["contact_ids"]:
                    if metadata.get("main_contact"):
                        lead["contact_ids"].insert(0, contact["id"])
                    else:
                        lead["contact_ids"].append(contact["id"])
                    contact["lead_ids"].append(lead["id"])
                out.append({"entity_id": entity_id, "entity_type": entity, "to_entity_id": target,
                            "to_entity_type": wanted, "metadata": metadata or None})
            return out

    def update_leads(self, items: Any) -> list[dict[str, Any]]:
        """PATCH /api/v4/leads: all validated first; status changes fire webhooks."""
        now = int(self.clock())
        with self.lock:
            planned = _all_valid(items, self._lead_change)
            out = []
            fired = []
            handed = []
            for rid, (lead, change) in planned:
                old = (lead["status_id"], lead["pipeline_id"])
                if change.get("responsible_user_id", lead["responsible_user_id"]) != lead["responsible_user_id"]:
                    handed.append((lead, lead["responsible_user_id"]))
                _merge_custom_fields(lead, change.pop("custom_fields_values", None))
                lead.update(change)
                lead["updated_at"] = now
                if lead["status_id"] in (WON, LOST) and old[0] not in (WON, LOST):
                    lead["closed_at"] = now
                if (lead["status_id"], lead["pipeline_id"]) != old:
                    fired.append((lead, old))
                out.append({"id": lead["id"], "updated_at": now, "request_id": rid})
        for lead, (old_status, old_pipeline) in fired:
            self.on_status_change(lead, old_status, old_pipeline)
        for lead, old_user in handed:
            self.on_responsible_change(lead, old_user)
        return out

    def _lead_change(self, rid: str, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """One lead update checked: the lead and what changes in it."""
        if not isinstance(body, dict) or body.get("id") not in self.leads:
            raise Invalid([_err(rid, "id", "The value you selected is not a valid choice.")])
        lead = self.leads[body["id"]]
        change: dict[str, Any] = {}
        if "status_id" in body or "pipeline_id" in body:
            merged = {"pipeline_id": body.get("pipeline_id", lead["pipeline_id"]),
                      "status_id": body.get("status_id", lead["status_id"])}
            change["pipeline_id"], change["status_id"] = self._placement(merged, rid)
        if "responsible_user_id" in body:
            change["responsible_user_id"] = self._user(body["responsible_user_id"], rid, "responsible_user_id")
        if "name" in body:
            change["name"] = str(body["name"])[:255]
        if "price" in body:
            change["price"] = body["price"]
        if "custom_fields_values" in body:
            change["custom_fields_values"] = self._custom_fields("leads", body["custom_fields_values"], rid, "")
        return lead, change

    def add_notes(self, entity: str, items: Any, entity_id: int | None = None) -> list[dict[str, Any]]:
        now = int(self.clock())
        table = self.leads if entity == "leads" else self.contacts
        with self.lock:
            planned = _all_valid(items, lambda rid, body: _note(table, entity_id, rid, body))
            out = []
            for rid, (target, note_type, params, body) in planned:
                note_id = self.next_id("note")
                note = {"id": note_id, "entity": entity, "entity_id": target, "note_type": note_type,
                        "params": dict(params), "created_at": now, "updated_at": now,
                        "created_by": body.get("created_by") or self.users[0]["id"],
                        "responsible_user_id": self.users[0]["id"], "is_pinned": False}
                self.notes[note_id] = note
                out.append({"id": note_id, "entity_id": target, "request_id": rid})
        for item in out:
            self.on_note(self.notes[item["id"]])
        return out

    def add_tasks(self, items: Any) -> list[dict[str, Any]]:
        """POST /api/v4/tasks: a task needs text and a deadline (complete_till); linked to
        a lead or contact; task_type_id 1 (follow-up) or 2 (meeting); the responsible user
        defaults to the one calling."""
        now = int(self.clock())
        with self.lock:
            users = {u["id"] for u in self.users}
            planned = _all_valid(items, lambda rid, body: self._task(users, rid, body))
            out = []
            for rid, (entity_type, target, task_type, responsible, till, body) in planned:
                task_id = self.next_id("task")
                self.tasks[task_id] = {
                    "id": task_id, "created_by": self.users[0]["id"], "updated_by": self.users[0]["id"],
                    "created_at": now, "updated_at": now, "responsible_user_id": responsible, "group_id": 0,
                    "entity_id": target, "entity_type": entity_type, "duration": 0, "is_completed": False,
                    "task_type_id": task_type, "text": str(body["text"]), "result": [], "complete_till": till,
                    "account_id": self.account_id}
                out.append({"id": task_id, "request_id": rid})
        return out

    def _task(self, users: set[int], rid: str, body: Any) -> tuple[str, int, int, int, int, dict[str, Any]]:
        """One task checked: (entity type, entity id, task type, responsible user, deadline, body)."""
        if not isinstance(body, dict):
            raise Invalid([_err(rid, "", "This value should be of type object.", "InvalidType")])
        entity_type = body.get("entity_type")
        table = {"leads": self.leads, "contacts": self.contacts}.get(entity_type)
        if table is None:
            raise Invalid([_err(rid, "entity_type", "The value you selected is not a valid choice.")])
        target = body.get("entity_id")
        if target not in table or table[target].get("is_deleted"):
            raise Invalid([_err(rid, "entity_id", "The value you selected is not a valid choice.")])
        if not str(body.get("text") or "").strip():
            raise Invalid([_err(rid, "text", "This value should not be blank.", "NotBlank")])
        till = body.get("complete_till")
        if not isinstance(till, int) or isinstance(till, bool) or till <= 0:
            raise Invalid([_err(rid, "complete_till", "This value should be of type int.", "InvalidType")])
        task_type = body.get("task_type_id", 1)
        if task_type not in (1, 2):
            raise Invalid([_err(rid, "task_type_id", "The value you selected is not a valid choice.")])
        responsible = body.get("responsible_user_id", self.users[0]["id"])
        if responsible not in users:
            raise Invalid([_err(rid, "responsible_user_id", "The value you selected is not a valid choice.")])
        return entity_type, target, task_type, responsible, till, body

    def find_tasks(self, entity_type: str | None, entity_ids: set[int], updated_from: int | None,
                   updated_to: int | None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(t) for t in sorted(self.tasks.values(), key=lambda t: t["id"])
                    if (entity_type is None or t["entity_type"] == entity_type)
                    and (not entity_ids or t["entity_id"] in entity_ids)
                    and (updated_from is None or t["updated_at"] >= updated_from)
                    and (updated_to is None or t["updated_at"] <= updated_to)]

    # -- reads --------------------------------------------------------------------------------
    def contact_matches(self, contact: dict[str, Any], query: str) -> bool:
        q = query.strip().lower()
        texts = [contact["name"], contact["first_name"], contact["last_name"]]
        texts += [str(v["value"]) for cf in contact["custom_fields_values"] for v in cf["values"]]
        if any(q in (t or "").lower() for t in texts):
            return True
        qd = digits(q)
        return len(qd) >= 5 and any(qd in digits(t) for t in texts if digits(t))

    def lead_matches(self, lead: dict[str, Any], query: str) -> bool:
        q = query.strip().lower()
        texts = [lead["name"], str(lead["id"])]
        texts += [str(v["value"]) for cf in lead["custom_fields_values"] for v in cf["values"]]
        return any(q in (t or "").lower() for t in texts)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "contacts": sum(1 for c in self.contacts.values() if not c["is_deleted"]),
                "deals": sum(1 for x in self.leads.values() if not x["is_deleted"]),
                "notes": sum(1 for n in self.notes.values() if n["entity"] == "leads"),
                "contact_notes": sum(1 for n in self.notes.values() if n["entity"] == "contacts"),
            }
