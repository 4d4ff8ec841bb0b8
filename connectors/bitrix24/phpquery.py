"""PHP-style query strings, the encoding Bitrix24 speaks.

Batch commands are strings like "crm.deal.add?fields[TITLE]=Hi&fields[CONTACT_ID]=5";
Bitrix24 parses them with PHP's parse_str and event handlers receive form bodies such as
data[FIELDS][ID]=759&auth[application_token]=... . Both directions live here so the
client, the emulator and the webhook handler agree byte for byte.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote

_KEY = re.compile(r"^([^\[]*)((?:\[[^\]]*\])*)(.*)$")


def _scalar(value: Any) -> str:
    if value is True:
        return "Y"
    if value is False:
        return "N"
    if value is None:
        return ""
    return str(value)


def _pairs(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        if not value:
            return []
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(_pairs(f"{prefix}[{k}]" if prefix else str(k), v))
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            out.extend(_pairs(f"{prefix}[{i}]", v))
        return out
    return [(prefix, _scalar(value))]


def flatten(params: dict[str, Any]) -> list[tuple[str, str]]:
    """Nested params -> [("fields[PHONE][0][VALUE]", "+1555..."), ...]."""
    return _pairs("", params)


def build_query(params: dict[str, Any]) -> str:
    """PHP http_build_query: nested keys in brackets, values percent-encoded (RFC 3986)."""
    return "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in flatten(params))


def _path(key: str) -> list[str]:
    m = _KEY.match(key)
    if not m:
        return [key]
    head, brackets, rest = m.groups()
    if rest:  # PHP keeps a malformed tail as part of the last name; we keep it flat
        return [key]
    return [head] + re.findall(r"\[([^\]]*)\]", brackets)


def _assign(target: dict[str, Any], path: list[str], value: str) -> None:
    node: Any = target
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "":  # "a[]" appends
            part = str(len(node))
        if last:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child


def _listify(node: Any) -> Any:
    """Dicts keyed 0..n-1 become lists, as PHP arrays serialise to JSON."""
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        keys = list(converted)
        if keys and all(k.isdigit() for k in keys) and sorted(int(k) for k in keys) == list(range(len(keys))):
            return [converted[str(i)] for i in range(len(keys))]
        return converted
    return node


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        _assign(out, _path(key), value)
    return _listify(out)


def parse_query(query: str) -> dict[str, Any]:
    """PHP parse_str: "a[b][0]=1&a[b][1]=2" -> {"a": {"b": ["1", "2"]}} (values stay strings)."""
    return parse_pairs(parse_qsl(query, keep_blank_values=True))
