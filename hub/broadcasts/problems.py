"""The one error every broadcast step raises for bad input, in a module of its own so
the steps (lifecycle, results, verdict) and the web layers all import it from below."""
from __future__ import annotations

from typing import Any


class BroadcastProblem(ValueError):
    """Bad input for a broadcast: `status` for the API, `field` and `rows` to fix."""

    def __init__(self, message: str, *, field: str, status: int = 422, rows: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.field, self.status, self.rows = field, status, rows or []
