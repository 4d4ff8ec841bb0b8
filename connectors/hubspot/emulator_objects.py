"""CRM objects v3 (contacts, deals, communications, tasks, notes): single and batch create,
read and update, and the paged list. Unique values are refused with HubSpot's 409 and a
deal's stage or owner change queues its webhook."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from connectors.hubspot.emulator_errors import ApiError
from connectors.hubspot.emulator_requests import body, inputs_of, object_type, ok
from connectors.hubspot.emulator_state import (
    SINGULAR, State, now_iso, queue_deal_change, queue_stage_change)


def register(app: Flask, state: State) -> None:
    @app.post("/crm/v3/objects/<type_name>/batch/create")
    def batch_create(type_name: str) -> Response:
        type_ = object_type(type_name)
        inputs = inputs_of(body())
        started = now_iso()
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
                record = state.insert(type_, props, assocs)
                public = state.public(type_, record, sorted(props))
                if trace:
                    public["objectWriteTraceId"] = trace
                results.append(public)
            state.counters[f"created:{type_}"] += len(results)
        return ok({"status": "COMPLETE", "results": results, "requestedAt": started, "startedAt": started,
                   "completedAt": now_iso()}, 201)

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
            record = state.insert(type_, props, assocs)
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
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now_iso(),
                                   "completedAt": now_iso()}
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
                record["updatedAt"] = now_iso()
                if type_ == "deals" and "dealstage" in props and props["dealstage"] != before:
                    queue_stage_change(state, id_, props["dealstage"])
                if type_ == "deals" and "hubspot_owner_id" in props and props["hubspot_owner_id"] != owner_before:
                    queue_deal_change(state, id_, "hubspot_owner_id", props["hubspot_owner_id"] or "",
                                       "INTEGRATION")
                results.append(state.public(type_, record, sorted(props)))
            state.counters[f"updated:{type_}"] += len(results)
        return ok({"status": "COMPLETE", "results": results, "startedAt": now_iso(), "completedAt": now_iso()})

    @app.patch("/crm/v3/objects/<type_name>/<object_id>")
    def update_one(type_name: str, object_id: str) -> Response:
        """PATCH /crm/v3/objects/{type}/{id}: the properties given change, the others stay;
        an empty string clears one. Answers the object with the properties it changed."""
        type_ = object_type(type_name)
        item = body()
        with state.lock:
            record = state.objects[type_].get(object_id)
            if record is None:
                raise ApiError(404, "resource not found", "OBJECT_NOT_FOUND")
            props = state.check_properties(type_, (item or {}).get("properties"), creating=False,
                                           current=record["properties"])
            owner_before = record["properties"].get("hubspot_owner_id")
            before = record["properties"].get("dealstage")
            record["properties"].update(props)
            record["updatedAt"] = now_iso()
            if type_ == "deals" and "dealstage" in props and props["dealstage"] != before:
                queue_stage_change(state, object_id, props["dealstage"])
            if type_ == "deals" and "hubspot_owner_id" in props and props["hubspot_owner_id"] != owner_before:
                queue_deal_change(state, object_id, "hubspot_owner_id", props["hubspot_owner_id"] or "", "INTEGRATION")
            state.counters[f"updated:{type_}"] += 1
            return ok(state.public(type_, record, sorted(props)))

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
