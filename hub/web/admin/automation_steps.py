"""The scenario editor's step forms: add, edit, delete and reorder a step, and edit the
trigger, each writing into the draft the JSON editor edits. A form carries the draft's
revision: one made from an older draft is refused (409) instead of overwriting what
was saved since. A step that the schema or the publishing checks refuse is not saved:
the form comes back (422) with the problems named by the step's path. Admins only."""
from __future__ import annotations

import copy
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from hub.automations import store
from hub.automations.definition import TRIGGER_TYPES, step_path
from hub.models import Scenario
from hub.platform.db import utcnow
from hub.web.admin import automation_forms as forms
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, roles
from hub.web.admin.automations import _page
from hub.web.lookups import db, get_or_404


def _steps(document: Any) -> list[Any]:
    steps = document.get("steps") if isinstance(document, dict) else None
    return steps if isinstance(steps, list) else []


def _step_ids(document: Any) -> list[str]:
    return [s["id"] for s in _steps(document) if isinstance(s, dict) and isinstance(s.get("id"), str)]


class StaleDraft(Exception):
    """The form was made from another revision of the draft."""

    def __init__(self, scenario_id: int):
        super().__init__(scenario_id)
        self.scenario_id = scenario_id


def _check_revision(scenario_id: int, document: Any) -> None:
    if request.form.get("revision", "") != forms.revision(document):
        raise StaleDraft(scenario_id)


@bp.errorhandler(StaleDraft)
def _stale(exc: StaleDraft) -> Any:
    """409 with the draft as it is now (the transaction that found it has ended)."""
    flash(_("The draft changed since this form was opened; nothing was saved. Here is the draft as it is now."),
          "error")
    return _page(exc.scenario_id, status=409)


def _step_page(scenario_id: int, document: Any, *, index: int | None, at: int, kind: str, values: list[Any],
               step_id: str, problems: list[str] | None = None, status: int = 200) -> Any:
    """`document` is the draft as saved: the form carries its revision."""
    return render_template("admin/automation_step.html", scenario_id=scenario_id, index=index, at=at, kind=kind,
                           types=forms.TYPES, fields=values, step_id=step_id, problems=problems or [],
                           step_ids=_step_ids(document), revision=forms.revision(document),
                           blank_rows=forms.BLANK_ROWS), status


def _kind(default: str) -> str:
    kind = request.values.get("type") or default
    if kind not in forms.STEP_FIELDS:
        abort(404)
    return kind


@bp.get("/automations/<int:scenario_id>/steps/new")
@roles(*ADMIN)
def automation_step_new(scenario_id: int) -> Any:
    with db().scope() as s:
        document = get_or_404(s, Scenario, scenario_id).draft
    kind = _kind("text")
    raw = request.args.get("at", "")
    at = min(int(raw), len(_steps(document))) if raw.isdigit() else len(_steps(document))
    return _step_page(scenario_id, document, index=None, at=at, kind=kind,
                      values=forms.shown(forms.STEP_FIELDS[kind], {}), step_id="")


@bp.get("/automations/<int:scenario_id>/steps/<int:index>")
@roles(*ADMIN)
def automation_step(scenario_id: int, index: int) -> Any:
    with db().scope() as s:
        document = get_or_404(s, Scenario, scenario_id).draft
    steps = _steps(document)
    if index >= len(steps) or not isinstance(steps[index], dict):
        abort(404)
    step = steps[index]
    kind = _kind(step.get("type") if step.get("type") in forms.STEP_FIELDS else "text")
    return _step_page(scenario_id, document, index=index, at=index, kind=kind,
                      values=forms.shown(forms.STEP_FIELDS[kind], step), step_id=str(step.get("id") or ""))


@bp.post("/automations/<int:scenario_id>/steps/save")
@roles(*ADMIN)
def automation_step_save(scenario_id: int) -> Any:
    kind = _kind("")
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        document = copy.deepcopy(scenario.draft)
        _check_revision(scenario_id, document)
        steps = _steps(document)
        raw_index, raw_at = request.form.get("index", ""), request.form.get("at", "")
        if raw_index.isdigit():
            index = int(raw_index)
            if index >= len(steps):
                abort(404)
            old = steps[index] if isinstance(steps[index], dict) else {}
        else:
            index = min(int(raw_at), len(steps)) if raw_at.isdigit() else len(steps)
            old = {}
        form = request.form.to_dict()
        try:
            step = forms.build_step(kind, form, old, index)
        except forms.FormProblems as exc:
            return _again(scenario_id, scenario.draft, raw_index, index, kind, form, exc.problems)
        if raw_index.isdigit():
            steps[index] = step
        else:
            steps.insert(index, step)
        if not isinstance(document.get("steps"), list):
            document["steps"] = steps
        problems = forms.problems_of(document, step_path(index, step), index)
        if problems:
            return _again(scenario_id, scenario.draft, raw_index, index, kind, form, problems)
        store.save_draft(scenario, document, now=utcnow())
    flash(_("Step %(id)s saved in the draft.", id=step["id"]), "success")
    return redirect(url_for("admin.automation", scenario_id=scenario_id), code=303)


def _again(scenario_id: int, document: Any, raw_index: str, index: int, kind: str, form: dict[str, str],
           problems: list[str]) -> Any:
    """The form as it was posted, with its problems; nothing saved."""
    values = [forms.Shown(f.spec, _posted(f.spec, form)) for f in forms.shown(forms.STEP_FIELDS[kind], {})]
    for value in values:
        value.errors = [p for p in problems if f").{value.spec.name}" in p or f"].{value.spec.name}" in p]
    return _step_page(scenario_id, document, index=index if raw_index.isdigit() else None, at=index, kind=kind,
                      values=values, step_id=form.get("id", ""), problems=problems, status=422)


def _posted(spec: forms.Field, form: dict[str, str]) -> Any:
    if spec.kind == "table":
        rows, count = [], form.get(f"{spec.name}-rows", "0")
        for r in range(min(int(count), 200) if count.isdigit() else 0):
            rows.append([form.get(f"{spec.name}-{r}-{c}", "") for c in range(len(spec.columns))])
        return rows
    if spec.kind == "template":
        return {k: form.get(f"template-{k}", "") for k in ("name", "language", "variables")}
    return form.get(spec.name, "")


@bp.post("/automations/<int:scenario_id>/steps/<int:index>/delete")
@roles(*ADMIN)
def automation_step_delete(scenario_id: int, index: int) -> Any:
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        document = copy.deepcopy(scenario.draft)
        _check_revision(scenario_id, document)
        steps = _steps(document)
        if index >= len(steps):
            abort(404)
        if len(steps) == 1:
            flash(_("A scenario needs at least one step; nothing was deleted."), "error")
            return redirect(url_for("admin.automation", scenario_id=scenario_id), code=303)
        gone = steps.pop(index)
        store.save_draft(scenario, document, now=utcnow())
    flash(_("Step %(id)s deleted from the draft.", id=(gone or {}).get("id") if isinstance(gone, dict) else index),
          "success")
    return redirect(url_for("admin.automation", scenario_id=scenario_id), code=303)


@bp.post("/automations/<int:scenario_id>/steps/<int:index>/move")
@roles(*ADMIN)
def automation_step_move(scenario_id: int, index: int) -> Any:
    direction = request.form.get("direction", "")
    if direction not in ("up", "down"):
        abort(400, description="direction: up or down")
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        document = copy.deepcopy(scenario.draft)
        _check_revision(scenario_id, document)
        steps = _steps(document)
        other = index - 1 if direction == "up" else index + 1
        if index >= len(steps) or not 0 <= other < len(steps):
            abort(404)
        steps[index], steps[other] = steps[other], steps[index]
        store.save_draft(scenario, document, now=utcnow())
    return redirect(url_for("admin.automation", scenario_id=scenario_id), code=303)


# -- the trigger ------------------------------------------------------------------------
def _trigger_page(scenario_id: int, document: Any, kind: str, values: list[Any], problems: list[str] | None = None,
                  status: int = 200) -> Any:
    return render_template("admin/automation_trigger.html", scenario_id=scenario_id, kind=kind,
                           types=TRIGGER_TYPES, fields=values, problems=problems or [],
                           revision=forms.revision(document), blank_rows=forms.BLANK_ROWS), status


@bp.route("/automations/<int:scenario_id>/trigger", methods=["GET", "POST"])
@roles(*ADMIN)
def automation_trigger(scenario_id: int) -> Any:
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        document = copy.deepcopy(scenario.draft)
        old = document.get("trigger") if isinstance(document.get("trigger"), dict) else {}
        kind = request.values.get("type") or old.get("type") or "manual"
        if kind not in forms.TRIGGER_FIELDS:
            abort(404)
        specs = forms.TRIGGER_FIELDS[kind]
        if request.method == "GET":
            return _trigger_page(scenario_id, document, kind,
                                 forms.shown(specs, old if old.get("type") == kind else {}))
        _check_revision(scenario_id, document)
        form = request.form.to_dict()
        try:
            document["trigger"] = forms.build_trigger(kind, form)
            problems = forms.problems_of(document, "trigger")
        except forms.FormProblems as exc:
            problems = exc.problems
        if problems:
            values = [forms.Shown(spec, _posted(spec, form), [p for p in problems if p.startswith(f"trigger.{spec.name}")])
                      for spec in specs]
            return _trigger_page(scenario_id, scenario.draft, kind, values, problems, 422)
        store.save_draft(scenario, document, now=utcnow())
    flash(_("Trigger saved in the draft."), "success")
    return redirect(url_for("admin.automation", scenario_id=scenario_id), code=303)
