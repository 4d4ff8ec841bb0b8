"""/api/v1/automations: scenarios (drafts), their versions, publish and roll back,
export and import as a file, manual start, runs with their step logs, statistics."""
from __future__ import annotations

import json
from typing import Any

from flask import Response, g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from hub.automations import runtime as automation_runtime
from hub.automations import stats, store
from hub.automations.store import ScenarioRefused
from hub.platform.db import utcnow
from hub.models import Conversation, Run, Scenario, ScenarioVersion, StepLog
from hub.models.automations import RUN_STATUSES
from hub.web.api.auth import authenticate, require_role
from hub.web.api.fields import Id, Int, Text
from hub.web.api.parsing import Blueprint
from hub.web.lookups import api_get_or_404, db

blp = Blueprint("automations", __name__, url_prefix="/automations",
                description="Chatbots and auto-funnels: scenarios as versioned JSON documents (docs/automations.md), "
                            "publish and roll back, export and import, manual start, runs and their step logs.")
blp.before_request(authenticate)

MAX_DOCUMENT = 256 * 1024  # characters of JSON: far past any scenario of 200 steps


def _document_size(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("expected a JSON object (the scenario document)")
    if len(json.dumps(value, ensure_ascii=False)) > MAX_DOCUMENT:
        raise ValidationError(f"the document is longer than {MAX_DOCUMENT} characters of JSON")


DOCUMENT_HELP = "the scenario: {name, trigger, steps, ...} (docs/automations.md)"


class ScenarioIn(Schema):
    document = fields.Dict(required=True, validate=_document_size, metadata={"description": DOCUMENT_HELP})
    publish = fields.Boolean(load_default=False, metadata={"description": "publish it at once (checked fully)"})


class ScenarioDraftIn(Schema):
    document = fields.Dict(required=True, validate=_document_size, metadata={"description": DOCUMENT_HELP})


class ScenarioImportIn(Schema):
    file = fields.Dict(required=True, validate=_document_size,
                       metadata={"description": "an exported file ({format: hub.automation/1, scenario}) or a bare "
                                                "scenario document"})
    publish = fields.Boolean(load_default=False)


class ScenarioRollbackIn(Schema):
    version = Int(1, 1_000_000, allow_none=True, load_default=None,
                  metadata={"description": "the version to run again; null: the one before the published one"})


class ScenarioStartIn(Schema):
    conversation_id = Id(Conversation, required=True)


class AutomationRunsQuery(Schema):
    scenario_id = Id(Scenario)
    conversation_id = Id(Conversation)
    status = Text(16, validate=validate.OneOf(RUN_STATUSES))
    limit = Int(1, 500, load_default=100)


class ScenarioVersionOut(Schema):
    id = fields.Integer()
    number = fields.Integer()
    published_at = fields.String()
    live = fields.Boolean(metadata={"description": "the version that runs"})


class ScenarioOut(Schema):
    id = fields.Integer()
    name = fields.String()
    trigger_type = fields.String(allow_none=True)
    published_version = fields.Integer(allow_none=True)
    document = fields.Dict()
    updated_at = fields.String()


class AutomationStepOut(Schema):
    id = fields.Integer()
    step = fields.String(allow_none=True)
    kind = fields.String()
    detail = fields.Dict()
    at = fields.String()


class AutomationRunOut(Schema):
    id = fields.Integer()
    scenario_id = fields.Integer()
    version = fields.Integer()
    conversation_id = fields.Integer()
    status = fields.String()
    step = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    trigger = fields.Dict()
    answers = fields.Dict()
    wake_at = fields.String(allow_none=True)
    started_at = fields.String()
    finished_at = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(AutomationStepOut), metadata={"description": "its step log (one run only)"})


class ScenarioStatsOut(Schema):
    started = fields.Integer()
    running = fields.Integer()
    completed = fields.Integer()
    handed_off = fields.Integer()
    closed = fields.Integer()
    dropped = fields.Integer()
    dropped_at = fields.Dict(keys=fields.String(), values=fields.Integer(),
                             metadata={"description": "runs that ended without finishing, by the step they ended at"})


def _refused(exc: ScenarioRefused) -> None:
    abort(422, message=f"the scenario was refused: {exc}", errors={"json": {"document": exc.problems}})


def _scenario(session, scenario_id: int) -> Scenario:
    return api_get_or_404(session, Scenario, scenario_id, "scenario")


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _scenario_out(session, scenario: Scenario) -> dict[str, Any]:
    version = session.get(ScenarioVersion, scenario.published_version_id) if scenario.published_version_id else None
    return {"id": scenario.id, "name": scenario.name, "trigger_type": scenario.trigger_type,
            "published_version": version.number if version else None, "document": scenario.draft,
            "updated_at": _iso(scenario.updated_at)}


def _run_out(session, run: Run, *, with_steps: bool) -> dict[str, Any]:
    version = session.get(ScenarioVersion, run.version_id)
    out = {"id": run.id, "scenario_id": run.scenario_id, "version": version.number if version else None,
           "conversation_id": run.conversation_id, "status": run.status, "step": run.step_id, "reason": run.reason,
           "trigger": run.trigger or {}, "answers": (run.state or {}).get("answers", {}),
           "wake_at": _iso(run.wake_at), "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at)}
    if with_steps:
        out["steps"] = [{"id": s.id, "step": s.step_id, "kind": s.kind, "detail": s.detail or {}, "at": _iso(s.at)}
                        for s in session.scalars(select(StepLog).where(StepLog.run_id == run.id).order_by(StepLog.id))]
    return out


@blp.route("/scenarios")
class Scenarios(MethodView):
    @blp.response(200, ScenarioOut(many=True))
    def get(self):
        with db().scope() as session:
            return [_scenario_out(session, s) for s in session.scalars(select(Scenario).order_by(Scenario.id))]

    @require_role("admin")
    @blp.arguments(ScenarioIn)
    @blp.response(201, ScenarioOut)
    def post(self, body: dict[str, Any]):
        with db().scope() as session:
            try:
                scenario = store.create(session, body["document"], now=utcnow())
                if body["publish"]:
                    store.publish(session, scenario, now=utcnow())
            except ScenarioRefused as exc:
                _refused(exc)
            return _scenario_out(session, scenario)


@blp.route("/scenarios/import")
class ScenarioImport(MethodView):
    @require_role("admin")
    @blp.arguments(ScenarioImportIn)
    @blp.response(201, ScenarioOut)
    def post(self, body: dict[str, Any]):
        """A new scenario from an exported file."""
        with db().scope() as session:
            try:
                scenario = store.import_document(session, body["file"], now=utcnow(), publish_now=body["publish"])
            except ScenarioRefused as exc:
                _refused(exc)
            return _scenario_out(session, scenario)


@blp.route("/scenarios/<id:scenario_id>")
class ScenarioItem(MethodView):
    @blp.response(200, ScenarioOut)
    def get(self, scenario_id: int):
        with db().scope() as session:
            return _scenario_out(session, _scenario(session, scenario_id))

    @require_role("admin")
    @blp.arguments(ScenarioDraftIn)
    @blp.response(200, ScenarioOut)
    def put(self, body: dict[str, Any], scenario_id: int):
        """Save the draft (what runs changes only on publish)."""
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            try:
                store.save_draft(scenario, body["document"], now=utcnow())
            except ScenarioRefused as exc:
                _refused(exc)
            return _scenario_out(session, scenario)

    @require_role("admin")
    @blp.response(204)
    def delete(self, scenario_id: int):
        """Delete the scenario, its versions and its runs."""
        with db().scope() as session:
            session.delete(_scenario(session, scenario_id))


@blp.route("/scenarios/<id:scenario_id>/versions")
class ScenarioVersions(MethodView):
    @blp.response(200, ScenarioVersionOut(many=True))
    def get(self, scenario_id: int):
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            return [{"id": v.id, "number": v.number, "published_at": _iso(v.published_at),
                     "live": v.id == scenario.published_version_id}
                    for v in session.scalars(select(ScenarioVersion).where(ScenarioVersion.scenario_id == scenario_id)
                                             .order_by(ScenarioVersion.number))]


@blp.route("/scenarios/<id:scenario_id>/publish")
class ScenarioPublish(MethodView):
    @require_role("admin")
    @blp.response(200, ScenarioOut)
    def post(self, scenario_id: int):
        """Check the draft fully and run it as the next version (422 names every bad part)."""
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            try:
                store.publish(session, scenario, now=utcnow())
            except ScenarioRefused as exc:
                _refused(exc)
            return _scenario_out(session, scenario)


@blp.route("/scenarios/<id:scenario_id>/unpublish")
class ScenarioUnpublish(MethodView):
    @require_role("admin")
    @blp.response(200, ScenarioOut)
    def post(self, scenario_id: int):
        """Start no new runs (live ones go on to their end)."""
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            store.unpublish(scenario, now=utcnow())
            return _scenario_out(session, scenario)


@blp.route("/scenarios/<id:scenario_id>/rollback")
class ScenarioRollback(MethodView):
    @require_role("admin")
    @blp.arguments(ScenarioRollbackIn)
    @blp.response(200, ScenarioOut)
    def post(self, body: dict[str, Any], scenario_id: int):
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            try:
                store.rollback(session, scenario, number=body["version"], now=utcnow())
            except ScenarioRefused as exc:
                abort(422, message=str(exc), errors={"json": {"version": exc.problems}})
            return _scenario_out(session, scenario)


@blp.route("/scenarios/<id:scenario_id>/export")
class ScenarioExport(MethodView):
    @blp.response(200, description="the scenario's draft as a file to import elsewhere (hub.automation/1)")
    def get(self, scenario_id: int):
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            document = store.export(scenario)
        body = json.dumps(document, ensure_ascii=False, indent=2)
        return Response(body, mimetype="application/json", headers={
            "Content-Disposition": f'attachment; filename="scenario-{scenario_id}.json"'})


@blp.route("/scenarios/<id:scenario_id>/start")
class ScenarioStart(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(ScenarioStartIn)
    @blp.response(201, AutomationRunOut)
    def post(self, body: dict[str, Any], scenario_id: int):
        """Start the published version in a conversation now (its steps run on a worker)."""
        with db().scope() as session:
            scenario = _scenario(session, scenario_id)
            conversation = api_get_or_404(session, Conversation, body["conversation_id"], "conversation")
            try:
                run = automation_runtime.start_manually(session, scenario, conversation, now=utcnow(),
                                                        by=f"api:{g.api_user['email']}")
            except ScenarioRefused as exc:
                abort(409, message=str(exc))
            return _run_out(session, run, with_steps=True)


@blp.route("/scenarios/<id:scenario_id>/stats")
class ScenarioStats(MethodView):
    @blp.response(200, ScenarioStatsOut)
    def get(self, scenario_id: int):
        """Started, completed, handed off, dropped (and at which step)."""
        with db().scope() as session:
            _scenario(session, scenario_id)
            return stats.of_scenario(session, scenario_id)


@blp.route("/runs")
class Runs(MethodView):
    @blp.arguments(AutomationRunsQuery, location="query")
    @blp.response(200, AutomationRunOut(many=True))
    def get(self, query: dict[str, Any]):
        """Runs, newest first (filter by scenario, conversation, status)."""
        with db().scope() as session:
            q = select(Run).order_by(Run.id.desc()).limit(query["limit"])
            for name in ("scenario_id", "conversation_id", "status"):
                if query.get(name) is not None:
                    q = q.where(getattr(Run, name) == query[name])
            return [_run_out(session, r, with_steps=False) for r in session.scalars(q)]


@blp.route("/runs/<bigid:run_id>")
class RunItem(MethodView):
    @blp.response(200, AutomationRunOut)
    def get(self, run_id: int):
        """A run with every step it took: what it sent, stored, why it branched."""
        with db().scope() as session:
            run = api_get_or_404(session, Run, run_id, "run")
            return _run_out(session, run, with_steps=True)


