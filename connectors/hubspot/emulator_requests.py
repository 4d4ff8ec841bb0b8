"""What every route group reads a request with and answers by: the JSON object body, the
object type named in the path (HubSpot's aliases and type ids), a batch's inputs under
the batch limit, and a JSON answer."""
from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from connectors.hubspot.emulator_errors import ApiError
from connectors.hubspot.emulator_state import ALIASES, BATCH_LIMIT


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
