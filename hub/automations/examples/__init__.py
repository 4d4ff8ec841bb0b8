"""Ready scenarios shipped as importable files (the export format, hub.automation/1)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    """One example file as exported (import it with hub.automations.store.import_document)."""
    path = HERE / f"{name}.json"
    if path.parent != HERE or not path.is_file():
        raise LookupError(f"no example scenario {name!r} (one of {', '.join(names())})")
    return json.loads(path.read_text(encoding="utf-8"))
