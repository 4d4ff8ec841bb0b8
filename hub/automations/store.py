"""Scenarios and their versions: drafts, publish, roll back, export and import.

A draft is any JSON object with a name and steps, saved as given (an editor keeps half
done work); publishing checks it fully (definition + checks + the templates it names)
and freezes it as the next version, which is what runs. Rolling back points the
scenario at an older version; unpublishing stops new runs (live ones finish).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.automations import checks
from hub.automations.definition import DefinitionError, load
from hub.models import Cursor, Scenario, ScenarioVersion, Template

EXPORT_FORMAT = "hub.automation/1"
STREAM = "events"


class ScenarioRefused(ValueError):
    """A document or a request the store cannot take; `problems` name the parts."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _draft(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ScenarioRefused(["document: expected a JSON object"])
    name = document.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ScenarioRefused(["name: a text of 1 to 200 characters"])
    if not isinstance(document.get("steps"), list):
        raise ScenarioRefused(["steps: expected a list of steps"])
    return document


def create(session: Session, document: Any, *, now: datetime) -> Scenario:
    draft = _draft(document)
    scenario = Scenario(name=draft["name"].strip(), draft=draft, created_at=now, updated_at=now)
    session.add(scenario)
    session.flush()
    return scenario


def save_draft(scenario: Scenario, document: Any, *, now: datetime) -> None:
    draft = _draft(document)
    scenario.draft, scenario.name, scenario.updated_at = draft, draft["name"].strip(), now


def _placeholders(template: Template) -> int:
    body = next((c for c in template.components or [] if (c.get("type") or "").upper() == "BODY"), None)
    return len(set(re.findall(r"\{\{\s*([^{}\s]+)\s*\}\}", (body or {}).get("text") or "")))


def template_problems(session: Session, definition: dict[str, Any]) -> list[str]:
    """Templates the scenario sends with a number of variables none of the templates of
    that name and language takes (templates not synced here are not judged)."""
    out = []
    for i, step in enumerate(definition["steps"]):
        ref = step.get("template")
        if not ref:
            continue
        rows = list(session.scalars(select(Template).where(Template.name == ref["name"],
                                                           Template.language == ref["language"])))
        given = len(ref.get("variables") or [])
        takes = sorted({_placeholders(t) for t in rows})
        if rows and given not in takes:
            out.append(f"steps[{i}] ({step['id']}).template.variables: {ref['name']} ({ref['language']}) takes "
                       f"{' or '.join(map(str, takes))} variable(s), the step gives {given}")
    return out


def publish(session: Session, scenario: Scenario, *, now: datetime) -> ScenarioVersion:
    """Check the draft and publish it as the next version; raises ScenarioRefused."""
    try:
        definition = checks.publishable(scenario.draft)
    except DefinitionError as exc:
        raise ScenarioRefused(exc.problems) from None
    problems = template_problems(session, definition)
    if problems:
        raise ScenarioRefused(problems)
    number = (session.scalar(select(func.max(ScenarioVersion.number))
                             .where(ScenarioVersion.scenario_id == scenario.id)) or 0) + 1
    version = ScenarioVersion(scenario_id=scenario.id, number=number, definition=scenario.draft,
                              published_at=now, created_at=now)
    session.add(version)
    session.flush()
    scenario.published_version_id = version.id
    scenario.trigger_type = definition["trigger"]["type"]
    scenario.updated_at = now
    start_reading(session, now=now)
    return version


def rollback(session: Session, scenario: Scenario, *, number: int | None, now: datetime) -> ScenarioVersion:
    """Run an older version again (the one before the published one by default)."""
    current = session.get(ScenarioVersion, scenario.published_version_id) if scenario.published_version_id else None
    query = select(ScenarioVersion).where(ScenarioVersion.scenario_id == scenario.id)
    if number is not None:
        target = session.scalar(query.where(ScenarioVersion.number == number))
        if target is None:
            raise ScenarioRefused([f"version: scenario {scenario.id} has no version {number}"])
    else:
        below = current.number if current else None
        if below is None:
            raise ScenarioRefused(["version: nothing is published to roll back from"])
        target = session.scalar(query.where(ScenarioVersion.number < below)
                                .order_by(ScenarioVersion.number.desc()).limit(1))
        if target is None:
            raise ScenarioRefused([f"version: version {below} is the first; there is none before it"])
    scenario.published_version_id = target.id
    scenario.trigger_type = target.definition["trigger"]["type"]
    scenario.updated_at = now
    start_reading(session, now=now)
    return target


def unpublish(scenario: Scenario, *, now: datetime) -> None:
    scenario.published_version_id = None
    scenario.trigger_type = None
    scenario.updated_at = now


def start_reading(session: Session, *, now: datetime) -> None:
    """The runtime reads events from the first publication on, not the hub's history."""
    if session.get(Cursor, STREAM) is None:
        session.add(Cursor(name=STREAM, last_at=now, last_id=""))
        session.flush()


def export(scenario: Scenario, version: ScenarioVersion | None = None) -> dict[str, Any]:
    """The file a scenario is exported as: its draft (or a version) in an envelope."""
    return {"format": EXPORT_FORMAT, "name": scenario.name,
            "version": version.number if version else None,
            "scenario": version.definition if version else scenario.draft}


def import_document(session: Session, document: Any, *, now: datetime, publish_now: bool = False) -> Scenario:
    """A new scenario from an exported file (or a bare scenario document)."""
    if isinstance(document, dict) and "format" in document:
        if document["format"] != EXPORT_FORMAT:
            raise ScenarioRefused([f"format: expected {EXPORT_FORMAT!r}, got {document['format']!r}"])
        document = document.get("scenario")
    scenario = create(session, document, now=now)
    if publish_now:
        publish(session, scenario, now=now)
    return scenario


_definitions: dict[str, dict[str, Any]] = {}


def loaded(version: ScenarioVersion) -> dict[str, Any]:
    """A version's definition as the engine takes it, cached by its text (a version
    never changes, but ids repeat across databases)."""
    key = json.dumps(version.definition, sort_keys=True)
    found = _definitions.get(key)
    if found is None:
        found = load(version.definition)
        if len(_definitions) > 2000:
            _definitions.clear()
        _definitions[key] = found
    return found


def published(session: Session) -> list[tuple[Scenario, ScenarioVersion]]:
    return [(scenario, version) for scenario, version in session.execute(select(Scenario, ScenarioVersion).join(
        ScenarioVersion, ScenarioVersion.id == Scenario.published_version_id).order_by(Scenario.id))]
