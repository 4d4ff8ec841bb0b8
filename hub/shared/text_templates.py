"""Name templates such as "WhatsApp: {contact_name}" that admins type into connector
settings: checked once when saved, so a typo is refused with the placeholders allowed."""
from __future__ import annotations

import string
from typing import Iterable


def placeholder_problem(template: str, allowed: Iterable[str]) -> str | None:
    """Why `template` cannot be filled from `allowed` placeholders, or None if it can."""
    allowed = list(allowed)
    choices = ", ".join("{" + name + "}" for name in allowed)
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"bad placeholder syntax: {exc}; use {choices}"
    unknown = [name for name in names if name not in allowed]
    if unknown:
        return f"unknown placeholder {', '.join('{' + n + '}' for n in unknown)}; use {choices}"
    return None
