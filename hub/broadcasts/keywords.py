"""Opt-out and opt-in keywords: a customer message that is just "STOP" (or "стоп!",
" Отписаться ") is a request, whatever its case or punctuation."""
from __future__ import annotations

import functools
import re
from typing import Iterable

_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


def normalise(text: str) -> str:
    return _EDGES.sub("", " ".join(text.split())).casefold()


def matches(text: str | None, keywords: Iterable[str]) -> bool:
    """Is the whole message one of `keywords`? A sentence that merely contains one
    ("don't stop sending") is not a request."""
    if not text or len(text) > 80:
        return False
    said = normalise(text)
    return bool(said) and said in _normalised(tuple(keywords))


@functools.lru_cache(maxsize=64)
def _normalised(keywords: tuple[str, ...]) -> frozenset[str]:
    """The settings' keywords as compared, worked out once (this runs on every inbound text)."""
    return frozenset(normalise(k) for k in keywords)
