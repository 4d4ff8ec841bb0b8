"""PHP-style nested form keys, the encoding of amoCRM's webhooks.

amoCRM posts `application/x-www-form-urlencoded` bodies whose keys carry the nesting:
`leads[status][0][id]=123&account[subdomain]=acme`. `decode` rebuilds the tree (objects
whose keys are all integers become lists, in index order); `encode` is its inverse, used
by the emulator's webhook sender.
"""
from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A key that is not PHP-style (`a[b][0]`) or that clashes with another key."""


def split_key(key: str) -> list[str]:
    match = _KEY.match(key)
    if not match:
        raise FormError(f"form key {key!r} is not of the form name[part][part]")
    return [match.group(1), *_PART.findall(match.group(2))]


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                # amoCRM sometimes sends a scalar and a nested value on one path
                # (`note[type]=3` and `note[type][message_uuid]=...`); keep the scalar
                # under "" so nothing is lost.
                child = {"": child}
                node[part] = child
            node = child
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):
            node[leaf][""] = value
        else:
            node[leaf] = value
    return _listify(root)


def decode(body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """A raw body, or an already parsed flat form (keys kept as sent)."""
    if isinstance(body, dict):
        pairs = []
        for k, v in body.items():
            values = v if isinstance(v, list) else [v]
            pairs.extend((k, "" if x is None else str(x)) for x in values)
        return decode_pairs(pairs)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError("form body is not UTF-8") from None
    return decode_pairs(parse_qsl(body, keep_blank_values=True, strict_parsing=False))


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        if data is None:
            return [(prefix, "")]
        if isinstance(data, bool):
            return [(prefix, "1" if data else "0")]
        return [(prefix, str(data))]
    for key, value in items:
        out.extend(flatten(value, f"{prefix}[{key}]" if prefix else str(key)))
    return out


def encode(data: dict[str, Any]) -> str:
    return urlencode(flatten(data))
