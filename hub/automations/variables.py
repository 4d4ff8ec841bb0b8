"""{{variables}} in scenario texts: what they may name, and their values (pure).

contact.name, contact.phone, contact.<field> (the contact's profile), conversation.<field>,
deal.<field>, answers.<save_as of an ask>, http.<save_as of an http step>[.<key>...],
trigger.<key> (what started the run: stage, keyword, source...), tags. An unknown value
renders as an empty string; publishing refuses names that can never have one.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
ROOTS = ("contact", "conversation", "deal", "answers", "http", "trigger", "tags")


def names(text: str) -> list[str]:
    return [m.group(1) for m in VARIABLE.finditer(text or "")]


def problem(name: str, *, answers: set[str], http: set[str]) -> str | None:
    """Why `name` can never have a value, or None."""
    if not NAME.match(name):
        return f"{{{{{name}}}}} is not a variable name"
    parts = name.split(".")
    root = parts[0]
    if root not in ROOTS:
        return f"{{{{{name}}}}}: unknown variable (one of {', '.join(r + '.…' for r in ROOTS)})"
    if root == "tags":
        return None if len(parts) == 1 else f"{{{{{name}}}}}: tags has no parts"
    if len(parts) < 2:
        return f"{{{{{name}}}}}: name a field, e.g. {root}.name"
    if root == "answers" and parts[1] not in answers:
        return f"{{{{{name}}}}}: no ask step saves an answer as {parts[1]!r}"
    if root == "http" and parts[1] not in http:
        return f"{{{{{name}}}}}: no http step saves its answer as {parts[1]!r}"
    return None


def lookup(name: str, scope: Mapping[str, Any]) -> Any:
    value: Any = scope
    for part in name.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    return str(value)


def render(text: str, scope: Mapping[str, Any]) -> str:
    return VARIABLE.sub(lambda m: _as_text(lookup(m.group(1), scope)), text or "")
