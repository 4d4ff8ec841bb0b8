"""The account's settings the connector reads or extends: account details, deal pipelines,
owners, and properties (list, read, create a custom one)."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from connectors.hubspot.emulator_errors import ApiError
from connectors.hubspot.emulator_requests import body, object_type, ok
from connectors.hubspot.emulator_state import TYPES, State, prop


def register(app: Flask, state: State) -> None:
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
            definition = prop(name, data["label"], data["type"], data["fieldType"], data["groupName"],
                               [o.get("value") for o in data.get("options") or []], bool(data.get("hasUniqueValue")))
            definition.update({"hubspotDefined": False, "calculated": False, "description": data.get("description", "")})
            definition["modificationMetadata"] = {"readOnlyValue": False, "readOnlyDefinition": False, "archivable": True}
            state.properties[type_][name] = definition
        return ok(definition, 201)
