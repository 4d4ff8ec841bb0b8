"""The emulated REST method's two ways out, shared by every emulator module: an Answer
(result with paging) or an ApiError (Bitrix24's error code and description)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


@dataclass
class Answer:
    result: Any
    total: int | None = None
    next: int | None = None
