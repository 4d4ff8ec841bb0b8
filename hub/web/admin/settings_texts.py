"""A Babel extractor for the texts of connectors' settings forms: the literal `label`
and `help` of each field's metadata (connectors/*/settings.py). Connectors stay free of
the hub's i18n; the admin translates what it renders from their schemas (the `tr`
filter), and this puts those texts in the catalogue beside the admin's own."""
from __future__ import annotations

import ast
from typing import IO, Any, Iterator

KEYS = ("label", "help")


def extract(fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any) -> Iterator[tuple]:
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value in KEYS and isinstance(value, ast.Constant) \
                    and isinstance(value.value, str) and value.value:
                yield value.lineno, None, value.value, []
