"""The account's pipelines and their stages (GET /api/v4/leads/pipelines), kept per
account for a while: a scenario moving deals to a stage by name must not cost a request
per deal, and amoCRM's limit of 7 requests a second is shared with the sync itself.
A name not found in a list older than a minute reads the list again (a stage just
added or renamed in amoCRM)."""
from __future__ import annotations

import threading
from typing import Any, Callable

from connectors.amocrm import mapping

TTL_SECONDS = 600.0
STALE_FOR_MISSES = 60.0

_lock = threading.Lock()
_kept: dict[str, tuple[float, list[dict[str, Any]]]] = {}


def forget() -> None:
    with _lock:
        _kept.clear()


class Pipelines:
    """One account's pipelines; `fetch` reads them from amoCRM, `now` is a timestamp."""

    def __init__(self, account: str, fetch: Callable[[], Any], now: Callable[[], float]):
        self.account = account
        self.fetch = fetch
        self.now = now

    def get(self, *, fresher_than: float = TTL_SECONDS) -> list[dict[str, Any]]:
        with _lock:
            kept = _kept.get(self.account)
        if kept is not None and self.now() - kept[0] < fresher_than:
            return kept[1]
        pipelines = mapping.embedded(self.fetch() or {}, "pipelines")
        with _lock:
            _kept[self.account] = (self.now(), pipelines)
        return pipelines

    def stage_patch(self, stage: str, pipeline: str, default_pipeline_id: Any) -> dict[str, Any] | str:
        """The PATCH that moves a lead to the stage (by id or name), or why there is none."""
        if stage.isdigit() and (not pipeline or pipeline.isdigit()):
            return mapping.automation_stage_patch(stage, pipeline, None)
        found = mapping.automation_stage_patch(stage, pipeline, self.get(), default_pipeline_id)
        if isinstance(found, str):
            found = mapping.automation_stage_patch(stage, pipeline, self.get(fresher_than=STALE_FOR_MISSES),
                                                   default_pipeline_id)
        return found
