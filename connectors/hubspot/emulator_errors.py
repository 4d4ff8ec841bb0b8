"""The emulated HubSpot API's refusal: an HTTP status, HubSpot's message and category,
and any extra fields of its error body. Every emulator module raises it; the app answers it."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.category, self.extra = status, message, category, extra
