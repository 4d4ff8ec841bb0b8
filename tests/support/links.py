"""The hub's link store (connectors.base.LinkStore) in memory, for tests that drive a
connector's code without a database: ids are kept as strings, as crm_links keeps them."""
from __future__ import annotations

from typing import Any


class MemoryLinks:
    def __init__(self, links: dict[tuple[str, str], str] | None = None) -> None:
        self.links: dict[tuple[str, str], str] = dict(links or {})

    def get(self, entity_type: str, entity_id: Any) -> str | None:
        return self.links.get((entity_type, str(entity_id)))

    def get_many(self, entity_type: str, ids: list[Any]) -> dict[str, str]:
        return {str(i): self.links[(entity_type, str(i))] for i in ids if (entity_type, str(i)) in self.links}

    def put(self, entity_type: str, entity_id: Any, crm_type: str, crm_id: Any) -> str:
        return self.links.setdefault((entity_type, str(entity_id)), str(crm_id))

    def put_many(self, entity_type: str, items: list[tuple[Any, str, Any]]) -> dict[str, str]:
        return {str(e): self.put(entity_type, e, t, c) for e, t, c in items}

    def set_many(self, entity_type: str, items: list[tuple[Any, str, Any]]) -> None:
        for e, _t, c in items:
            self.links[(entity_type, str(e))] = str(c)
