"""CRM search v3 (POST /crm/v3/objects/<type>/search): filter groups, operators, sorts and
paging, with HubSpot's limits on groups, filters, IN values and the page size."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response

from connectors.hubspot.emulator_errors import ApiError
from connectors.hubspot.emulator_requests import body, object_type, ok
from connectors.hubspot.emulator_state import (
    SEARCH_LIMIT, SEARCH_MAX_FILTERS, SEARCH_MAX_FILTERS_PER_GROUP, SEARCH_MAX_GROUPS, SEARCH_MAX_VALUES, State)


def register(app: Flask, state: State) -> None:
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
