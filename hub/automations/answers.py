"""Checking a customer's answer to an ask step (pure): the value to store, or why not."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from hub.shared.phones import to_e164

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d.%m.%y", "%d-%m-%Y")


def fold(text: str | None) -> str:
    """Case-folded, ё as е, spaces collapsed: how Russian and English words compare."""
    return " ".join((text or "").casefold().replace("ё", "е").split())


def _number(text: str) -> float | None:
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text)
    cleaned = cleaned.rstrip("₽$€").removesuffix("руб").removesuffix("rub")
    if re.fullmatch(r"-?\d+,\d+", cleaned):
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _date(text: str) -> date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def choose(choices: list[dict[str, Any]], text: str, reply_id: str | None) -> dict[str, Any] | None:
    """The choice a button or list reply (by id) or a typed answer (title, synonym or
    its number) names."""
    if reply_id:
        for choice in choices:
            if choice["id"] == reply_id:
                return choice
    said = fold(text)
    for i, choice in enumerate(choices, 1):
        if said in {fold(choice["title"]), fold(choice["id"]), str(i), *(fold(s) for s in choice.get("synonyms", []))}:
            return choice
    return None


def check(step: dict[str, Any], text: str | None, reply_id: str | None = None) -> tuple[Any, str | None]:
    """(value, None) for a good answer, (None, reason) for a bad one."""
    kind = step.get("validate_as", "text")
    said = (text or "").strip()
    if kind == "choice":
        choice = choose(step.get("choices") or [], said, reply_id)
        return (choice["id"], None) if choice else (None, "not one of the choices")
    if not said:
        return None, "empty answer"
    if kind == "text":
        return said[:1024], None
    if kind == "phone":
        phone = to_e164(said)
        return (phone, None) if phone else (None, "not a phone number")
    if kind == "email":
        return (said.lower(), None) if EMAIL.match(said) and len(said) <= 254 else (None, "not an e-mail address")
    if kind == "number":
        value = _number(said)
        if value is None:
            return None, "not a number"
        if step.get("min") is not None and value < step["min"]:
            return None, f"less than {step['min']:g}"
        if step.get("max") is not None and value > step["max"]:
            return None, f"more than {step['max']:g}"
        return (int(value) if value.is_integer() else value), None
    if kind == "date":
        day = _date(said)
        return (day.isoformat(), None) if day else (None, "not a date (e.g. 2026-12-31 or 31.12.2026)")
    raise ValueError(f"unknown validation {kind!r}")
