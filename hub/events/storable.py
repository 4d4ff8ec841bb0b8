"""Decode a webhook body into values the database can keep, noting what had to change.

PostgreSQL keeps no NUL in text or JSONB; a string holding an unpaired surrogate (which
JSON's `\\ud800` escape yields) cannot be encoded to UTF-8 by any driver; and a document
nested a thousand levels deep overflows the stack of whatever walks it next (the JSON
decoder itself, then the encoder of the payload column). Meta sends none of these, but
a signed body carrying them must still be stored, its other messages included, or Meta
retries the whole batch for days. So each bad character becomes U+FFFD and each subtree
deeper than MAX_DEPTH becomes TOO_DEEP; every change is noted by its place in the body
("entry[0].changes[0].value.messages[1].text.body") without the value itself, which
stays only in the raw body.
"""
from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # Meta's own payloads go about 12 levels deep
TOO_DEEP = "[nested too deeply: kept only in the raw webhook]"
REPLACEMENT = "\ufffd"

# \u0000, or a surrogate escape (paired ones included: they are rare, and cheap to check)
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")

Notes = dict[str, str]  # place in the body -> what was changed there


def load(text: str) -> tuple[Any, Notes]:
    """json.loads(text), repaired; raises json.JSONDecodeError like json.loads."""
    try:
        doc = json.loads(text)
    except RecursionError:
        doc = json.loads(flatten_deep(text))
    if _RISKY_ESCAPE.search(text) is None and text.count("{") + text.count("[") <= MAX_DEPTH:
        # NUL can only come from a \u0000 escape (raw control characters are not JSON),
        # a surrogate only from a \ud800-\udfff one (the UTF-8 decoder refuses them);
        # few brackets: not deep. Every real webhook takes this way.
        return doc, {}
    notes: Notes = {}
    return _repair(doc, "", 0, notes), notes


def repair_text(value: str) -> str:
    """The string with NUL and unpaired surrogates replaced (for values from elsewhere)."""
    return _repair_str(value, "", {})


def flatten_deep(text: str) -> str:
    """The JSON text with every array or object that opens below MAX_DEPTH replaced by
    the string TOO_DEEP, so that the rest of the document decodes. Only for bodies the
    decoder could not take (rare): a plain scan, no recursion."""
    out: list[str] = []
    depth, start, skip_from, in_string = 0, 0, -1, False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth == MAX_DEPTH + 1 and skip_from < 0:
                skip_from = i
        elif ch in "]}":
            if depth == MAX_DEPTH + 1 and skip_from >= 0:
                out.append(text[start:skip_from])
                out.append(json.dumps(TOO_DEEP))
                start, skip_from = i + 1, -1
            depth -= 1
        i += 1
    out.append(text[start:] if skip_from < 0 else text[start:skip_from] + json.dumps(TOO_DEEP))
    return "".join(out)


def _join(place: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{place}[{key}]"
    return f"{place}.{key}" if place else key


def _repair(value: Any, place: str, depth: int, notes: Notes) -> Any:
    if isinstance(value, str):
        return _repair_str(value, place, notes)
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        notes[place] = f"nested deeper than {MAX_DEPTH} levels: replaced (kept in the raw webhook)"
        return TOO_DEEP
    if isinstance(value, dict):
        repaired = {}
        for key, item in value.items():
            key = _repair_str(key, _join(place, "<key>"), notes)
            repaired[key] = _repair(item, _join(place, key), depth + 1, notes)
        return repaired
    if isinstance(value, list):
        return [_repair(item, _join(place, i), depth + 1, notes) for i, item in enumerate(value)]
    return value


def _repair_str(value: str, place: str, notes: Notes) -> str:
    if value == TOO_DEEP:
        notes[place] = f"nested deeper than {MAX_DEPTH} levels: replaced (kept in the raw webhook)"
        return value
    if value.isascii():
        if "\x00" not in value:
            return value
        notes[place] = "NUL character replaced with U+FFFD"
        return value.replace("\x00", REPLACEMENT)
    if "\x00" not in value:
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
    notes[place] = "NUL or unpaired surrogate replaced with U+FFFD"
    return "".join(REPLACEMENT if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)
