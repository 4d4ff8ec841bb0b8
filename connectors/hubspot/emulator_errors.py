"""The emulated HubSpot API's refusal: an HTTP status, HubSpot's message and category,
and any extra fields of its error body. Every emulator module raises it; the app answers it."""
from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response


class ApiError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.category, self.extra = status, message, category, extra


def error_response(exc: ApiError) -> Response:
    """HubSpot's error body: status "error", the message and category, a correlation id."""
    body = {"status": "error", "message": exc.message, "correlationId": str(uuid.uuid4()),
            "category": exc.category, **exc.extra}
    return Response(json.dumps(body), status=exc.status, mimetype="application/json")
