"""Automations in the admin: the scenario list with statistics, the editor (the draft's
JSON beside its steps and branches, saved and published through hub.automations.store
like the API, so problems are named by path), versions and rollback, and a simulator
that runs the draft against a test contact with the pure engine: nothing is sent or
stored. Admins edit; the other roles read and may simulate."""
from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from hub.automations import checks, engine, examples, stats, store
from hub.automations.definition import DefinitionError
from hub.platform.db import utcnow
from hub.models import Run, Scenario, ScenarioVersion
from hub.web.admin import automation_forms, bp
from hub.web.admin.auth import ADMIN, roles
from hub.web.lookups import db, get_or_404

MAX_FORM_JSON = 256 * 1024
TEST_CONTACT = {"name": "Test contact", "phone": "+10000000000"}


def _parse(text: str) -> tuple[Any, str | None]:
    if len(text) > MAX_FORM_JSON:
        return None, _("The document is longer than %(n)s characters.", n=MAX_FORM_JSON)
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, _("The document is not JSON: %(error)s", error=str(exc))


def step_rows(document: Any) -> list[dict[str, Any]]:
    """The draft's steps with where each can go, for the editor's step list."""
    rows = []
    for i, step in enumerate(document.get("steps") or [] if isinstance(document, dict) else []):
        if not isinstance(step, dict):
            continue
        goes = [(key, step[key]) for key in ("next", "on_fail", "on_timeout", "reply_next", "on_error", "else")
                if isinstance(step.get(key), str)]
        goes += [(f"case {c + 1}", case.get("next")) for c, case in enumerate(step.get("cases") or [])
                 if isinstance(case, dict)]
        text = step.get("text") or step.get("url") or step.get("stage") or ""
        rows.append({"index": i, "id": step.get("id"), "type": step.get("type"), "text": str(text)[:120],
                     "goes": goes})
    return rows


def _problems(document: Any) -> list[str]:
    try:
        checks.publishable(document)
    except DefinitionError as exc:
        return exc.problems
    return []


@bp.get("/automations")
def automations() -> Any:
    with db().scope() as s:
        scenarios = list(s.scalars(select(Scenario).order_by(Scenario.id)))
        versions = {v.id: v.number for v in s.scalars(select(ScenarioVersion))}
        rows = [{"scenario": sc, "version": versions.get(sc.published_version_id), "stats": stats.of_scenario(s, sc.id)}
                for sc in scenarios]
    return render_template("admin/automations.html", rows=rows, examples=examples.names())


@bp.post("/automations/new")
@roles(*ADMIN)
def automation_new() -> Any:
    example = request.form.get("example", "")
    if example:
        if example not in examples.names():
            abort(404)
        document: Any = examples.load(example)
    else:
        name = request.form.get("name", "").strip()
        document = {"name": name, "trigger": {"type": "manual"},
                    "steps": [{"id": "hello", "type": "text", "text": "Hello, {{contact.name}}!"}]}
    with db().scope() as s:
        try:
            scenario = store.import_document(s, document, now=utcnow())
        except store.ScenarioRefused as exc:
            flash("; ".join(exc.problems), "error")
            return redirect(url_for("admin.automations"))
        ident = scenario.id
    flash(_("Scenario created as a draft."), "success")
    return redirect(url_for("admin.automation", scenario_id=ident))


def _page(scenario_id: int, *, text: str | None = None, problems: list[str] | None = None, status: int = 200):
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        versions = list(s.scalars(select(ScenarioVersion).where(ScenarioVersion.scenario_id == scenario_id)
                                  .order_by(ScenarioVersion.number.desc())))
        runs = list(s.scalars(select(Run).where(Run.scenario_id == scenario_id).order_by(Run.id.desc()).limit(20)))
        figures = stats.of_scenario(s, scenario_id)
        s.expunge_all()
    document = scenario.draft
    trigger = document.get("trigger") if isinstance(document, dict) else None
    return render_template("admin/automation.html", scenario=scenario, versions=versions, runs=runs, stats=figures,
                           revision=automation_forms.revision(document), step_types=automation_forms.TYPES,
                           trigger_type=trigger.get("type") if isinstance(trigger, dict) else None,
                           text=text if text is not None else json.dumps(document, indent=2, ensure_ascii=False),
                           steps=step_rows(document), problems=problems if problems is not None else
                           _problems(document)), status


@bp.get("/automations/<int:scenario_id>")
def automation(scenario_id: int) -> Any:
    return _page(scenario_id)


@bp.post("/automations/<int:scenario_id>")
@roles(*ADMIN)
def automation_save(scenario_id: int) -> Any:
    text = request.form.get("document", "")
    document, error = _parse(text)
    if error:
        return _page(scenario_id, text=text, problems=[error], status=422)
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        given = request.form.get("revision")
        stale = bool(given) and given != automation_forms.revision(scenario.draft)
        try:
            if stale:
                raise store.ScenarioRefused([_(
                    "The draft changed since this page was opened (a step form or another editor saved it); "
                    "nothing was saved. Copy your text, reload the page and apply it again.")])
            store.save_draft(scenario, document, now=utcnow())
            if request.form.get("publish"):
                version = store.publish(s, scenario, now=utcnow())
                flash(_("Published as version %(n)s.", n=version.number), "success")
            else:
                flash(_("Draft saved."), "success")
        except store.ScenarioRefused as exc:
            s.rollback()
            return _page(scenario_id, text=text, problems=exc.problems, status=409 if stale else 422)
    return redirect(url_for("admin.automation", scenario_id=scenario_id))


@bp.post("/automations/<int:scenario_id>/rollback")
@roles(*ADMIN)
def automation_rollback(scenario_id: int) -> Any:
    raw = request.form.get("version", "")
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        try:
            if raw == "off":
                store.unpublish(scenario, now=utcnow())
                flash(_("Unpublished: no new runs start."), "success")
            else:
                number = int(raw) if raw.isdigit() and len(raw) < 8 else None
                version = store.rollback(s, scenario, number=number, now=utcnow())
                flash(_("Version %(n)s runs again.", n=version.number), "success")
        except store.ScenarioRefused as exc:
            flash("; ".join(exc.problems), "error")
    return redirect(url_for("admin.automation", scenario_id=scenario_id))


# -- the simulator ---------------------------------------------------------------------
def _said(action: engine.Send) -> dict[str, Any]:
    if action.kind == "template":
        return {"text": f"[template {action.template['name']}] " + " | ".join(action.template.get("body") or []),
                "buttons": []}
    content = action.content or {}
    if action.kind == "text":
        return {"text": content.get("body", ""), "buttons": []}
    if action.kind == "interactive":
        act = content.get("action") or {}
        choices = [(b["reply"]["id"], b["reply"]["title"]) for b in act.get("buttons", [])]
        for section in act.get("sections", []):
            choices += [(r["id"], r["title"]) for r in section.get("rows", [])]
        return {"text": (content.get("body") or {}).get("text", ""), "buttons": choices}
    return {"text": f"[{action.kind}] {content.get('caption') or content.get('link', '')}", "buttons": []}


def simulate(definition: dict[str, Any], state: dict[str, Any] | None, event: Any, *, window_open: bool,
             now: Any) -> tuple[engine.Outcome, list[dict[str, Any]]]:
    """One turn of the simulator: the engine's outcome and the transcript lines it adds.
    HTTP steps are not called: they answer as failed."""
    facts = engine.Facts(contact=dict(TEST_CONTACT), window_open=window_open)
    lines: list[dict[str, Any]] = []
    outcome = engine.advance(definition, state, event, now=now, facts=facts)
    for _ in range(5):
        for action in outcome.actions:
            if isinstance(action, engine.Send):
                lines.append({"who": "bot", **_said(action)})
            elif not isinstance(action, engine.Http):
                lines.append({"who": "note", "text": f"{type(action).__name__}: {action}", "buttons": []})
        lines += [{"who": "log", "text": f"{e['step'] or '—'}: {e['kind']} {json.dumps(e['detail'], ensure_ascii=False)}",
                   "buttons": []} for e in outcome.logs]
        if outcome.status == "waiting" and outcome.state.get("waiting") == "http":
            outcome = engine.advance(definition, outcome.state,
                                     engine.HttpResult(False, error="not called in the simulator"), now=now,
                                     facts=facts)
            continue
        break
    return outcome, lines


@bp.route("/automations/<int:scenario_id>/simulate", methods=["GET", "POST"])
def automation_simulate(scenario_id: int) -> Any:
    with db().scope() as s:
        scenario = get_or_404(s, Scenario, scenario_id)
        document, name = scenario.draft, scenario.name
    problems = _problems(document)
    transcript: list[dict[str, Any]] = []
    state: dict[str, Any] | None = None
    status = None
    window_open = request.form.get("window", "open") == "open" if request.method == "POST" else True
    if not problems and request.method == "POST":
        definition = checks.publishable(document)
        try:
            transcript = json.loads(request.form.get("transcript") or "[]")
            state = json.loads(request.form.get("state") or "null")
        except ValueError:
            transcript, state = [], None
        if not isinstance(transcript, list) or not (state is None or isinstance(state, dict)):
            transcript, state = [], None
        now = utcnow()
        pressed = request.form.get("press") or None
        what = "reply" if pressed else request.form.get("do", "start")
        if what == "start" or state is None:
            transcript, event = [], engine.Start({"type": "simulator"})
        elif what == "wait":
            event = engine.Timeout()
            transcript.append({"who": "note", "text": _("Time passes: the step waited for is due."), "buttons": []})
        else:
            offered = next((line.get("buttons") or [] for line in reversed(transcript)
                            if isinstance(line, dict) and line.get("who") == "bot"), [])
            said = next((title for bid, title in offered if bid == pressed), "") if pressed else \
                request.form.get("text", "")[:1000]
            reply_id = pressed
            transcript.append({"who": "customer", "text": said, "buttons": []})
            event = engine.Reply(said, reply_id)
        try:
            outcome, lines = simulate(definition, state, event, window_open=window_open, now=now)
        except (KeyError, TypeError, ValueError):  # a tampered state field: start over
            outcome, lines = simulate(definition, None, engine.Start({"type": "simulator"}), window_open=window_open,
                                      now=now)
            transcript = []
        transcript += lines
        state, status = outcome.state, outcome.status
    buttons = next((line["buttons"] for line in reversed(transcript) if line["who"] == "bot"), [])
    return render_template("admin/automation_simulate.html", scenario_id=scenario_id, name=name, problems=problems,
                           transcript=transcript, state=json.dumps(state) if state is not None else "",
                           transcript_json=json.dumps(transcript), status=status, buttons=buttons,
                           window_open=window_open)
