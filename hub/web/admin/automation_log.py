"""The automation runs of one conversation for its admin view: which scenario, which step,
when, and what each step did (sent what, was answered what, stored what where, branched
why), read from the step log, newest run first. Each entry is worded here, so the page
shows sentences rather than JSON, in the admin's language."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Run, Scenario, StepLog

RUNS = 5
ENTRIES = 200  # per run: a run that loops is stopped long before

KINDS = {
    "started": _l("started"), "sent": _l("sent"), "queued": _l("queued"), "skipped": _l("skipped"),
    "answered": _l("answered"), "invalid": _l("invalid answer"), "stored": _l("stored"),
    "branched": _l("branched"), "waiting": _l("waiting"), "waited": _l("waited"), "reminded": _l("reminded"),
    "no_answer": _l("no answer"), "resumed": _l("resumed"), "tagged": _l("tags"), "deal_stage": _l("deal stage"),
    "handed_off": _l("handed off"), "handoff": _l("routing"), "http": _l("HTTP call"),
    "http_answer": _l("HTTP answer"), "http_failed": _l("HTTP call failed"), "closed": _l("closed"),
    "stopped": _l("stopped"), "failed": _l("failed"),
}


@dataclass
class Entry:
    at: datetime
    step: str | None
    kind: str
    label: str
    said: str  # the words sent or answered, shown as such
    detail: str  # the rest, as key: value


@dataclass
class RunLog:
    run: Run
    scenario: str
    entries: list[Entry] = field(default_factory=list)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


SAID = {"sent": "text", "answered": "value", "invalid": "answer"}  # the words, per kind


def entry(log: StepLog) -> Entry:
    detail = dict(log.detail or {})
    key = SAID.get(log.kind)
    said = _value(detail.pop(key)) if key in detail else ""
    if log.kind == "started":
        detail = {"trigger": (detail.get("trigger") or {}).get("type")}
    rest = "; ".join(f"{k}: {_value(v)}" for k, v in detail.items() if v not in (None, "", [], {}))
    return Entry(log.at, log.step_id, log.kind, str(KINDS.get(log.kind, log.kind)), said, rest)


def conversation_runs(session: Session, conversation_id: int, *, limit: int = RUNS) -> list[RunLog]:
    runs = list(session.scalars(select(Run).where(Run.conversation_id == conversation_id)
                                .order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)))
    if not runs:
        return []
    names = dict(session.execute(select(Scenario.id, Scenario.name).where(
        Scenario.id.in_({r.scenario_id for r in runs}))).all())
    out = []
    for run in runs:
        logs = session.scalars(select(StepLog).where(StepLog.run_id == run.id).order_by(StepLog.id).limit(ENTRIES))
        out.append(RunLog(run, names.get(run.scenario_id, f"#{run.scenario_id}"), [entry(log) for log in logs]))
    return out
