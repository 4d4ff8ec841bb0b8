"""Associations v4: batch read, the paged list of one object's associations, batch create
(labelled or default) and batch archive; type ids must fit the two objects."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from connectors.hubspot.emulator_errors import ApiError
from connectors.hubspot.emulator_requests import body, object_type, ok
from connectors.hubspot.emulator_state import (
    ASSOCIATION_PAGE, ASSOCIATION_TYPES, DEFAULT_TYPE, TYPES, State, now_iso)


def register(app: Flask, state: State) -> None:
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
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now_iso(), "completedAt": now_iso()}
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
        return ok({"status": "COMPLETE", "results": results, "startedAt": now_iso(), "completedAt": now_iso()}, 201)

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
