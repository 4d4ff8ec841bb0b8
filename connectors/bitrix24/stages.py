"""A scenario's stage move by name: the portal's pipelines (crm.category.list) and their
stages (crm.status.list), kept per portal for ten minutes so that moving many deals
costs no request per deal (the portal's limit is shared with the sync). A name not
found in a list older than a minute reads the lists again (a stage just added or
renamed in Bitrix24).

A stage written as Bitrix24 names its ids (PREPARATION, C1:WON) with no pipeline is
taken as it is, without a request."""
from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from connectors.automation_notes import stage_move
from connectors.base import HubEvent

TTL_SECONDS = 600.0
STALE_FOR_MISSES = 60.0
STAGE_ID = re.compile(r"^(C\d+:)?[A-Z][A-Z0-9_]*$")

_lock = threading.Lock()
_kept: dict[tuple[str, str], tuple[datetime, Any]] = {}


def forget() -> None:
    with _lock:
        _kept.clear()


def _fold(text: Any) -> str:
    return str(text or "").strip().casefold().replace("ё", "е")


class Stages:
    """One portal's pipelines and stages; `call(method, params)` lists through the
    client, `clock` is the connector's."""

    def __init__(self, portal: str, call: Callable[[str, dict[str, Any]], list[Any]],
                 clock: Callable[[], datetime], *, target: str, category_id: int):
        self.portal, self.call, self.clock = portal, call, clock
        self.target, self.category_id = target, category_id

    def _get(self, what: str, method: str, params: dict[str, Any], fresher_than: float) -> list[Any]:
        key = (self.portal, what)
        with _lock:
            kept = _kept.get(key)
        now = self.clock()
        if kept is not None and (now - kept[0]).total_seconds() < fresher_than:
            return kept[1]
        rows = [r for r in self.call(method, params) if isinstance(r, dict)]
        with _lock:
            _kept[key] = (now, rows)
        return rows

    def _category(self, pipeline: str, fresher_than: float) -> int | str:
        """The category id of a pipeline given by id or name, or why there is none."""
        categories = self._get("categories", "crm.category.list", {"entityTypeId": 2}, fresher_than)
        for c in categories:
            if str(c.get("id")) == pipeline or _fold(c.get("name")) == _fold(pipeline):
                return int(c["id"])
        return f"pipeline {pipeline!r} is not in Bitrix24 (there are: " \
               f"{', '.join(str(c.get('name')) for c in categories) or 'none'})"

    def _find(self, stage: str, pipeline: str, fresher_than: float) -> tuple[str | None, str]:
        if self.target != "deal":
            entities = ["STATUS"]
        elif pipeline:
            category = self._category(pipeline, fresher_than)
            if isinstance(category, str):
                return None, category
            entities = [_entity(category)]
        else:  # the connector's pipeline first, then the main one
            entities = list(dict.fromkeys([_entity(self.category_id), _entity(0)]))
        for entity in entities:
            rows = self._get(entity, "crm.status.list", {"filter": {"ENTITY_ID": entity}}, fresher_than)
            for row in rows:
                if str(row.get("STATUS_ID")) == stage or _fold(row.get("NAME")) == _fold(stage):
                    return str(row["STATUS_ID"]), ""
        where = f" of pipeline {pipeline!r}" if pipeline else ""
        return None, f"stage {stage!r}{where} is not in Bitrix24"

    def stage_id(self, stage: str, pipeline: str) -> tuple[str | None, str]:
        """(the stage id, "") or (None, why the move is skipped)."""
        if not pipeline and STAGE_ID.match(stage):
            return stage, ""
        found, why = self._find(stage, pipeline, TTL_SECONDS)
        if found is None:
            found, why = self._find(stage, pipeline, STALE_FOR_MISSES)
        return found, why


def _entity(category: int) -> str:
    return "DEAL_STAGE" if not category else f"DEAL_STAGE_{category}"


def resolve(batch: list[HubEvent], stages: Stages) -> tuple[list[HubEvent], dict[int, str]]:
    """The batch with each stage move's stage as its Bitrix24 id, and the positions of
    the moves skipped with why (a stage or pipeline the portal lacks). A failed lookup
    raises the client's Bitrix24Error."""
    out: list[HubEvent] = []
    skipped: dict[int, str] = {}
    for index, event in enumerate(batch):
        move = stage_move(event.data or {}) if event.type == "automation.step" else None
        if move is None:
            out.append(event)
            continue
        found, why = stages.stage_id(*move)
        if found is None:
            skipped[index] = why
            out.append(event)
            continue
        out.append(replace(event, data={**event.data, "stage": found, "pipeline": None}))
    return out, skipped
