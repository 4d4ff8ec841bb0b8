"""/api/v1 broadcasts: audiences (segments, CSV uploads with their refusal report), the
pre-send verdict, broadcasts and their lifecycle, results and their CSV export.

Refusals name the field (and the rows) in errors.json, and write nothing."""
from __future__ import annotations

from typing import Any, NoReturn

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from hub.broadcasts import audiences, lifecycle, pauses, results, segments
from hub.broadcasts.csv_upload import CsvProblem
from hub.broadcasts.segments import KEYS as SEGMENT_KEYS, SegmentProblem
from hub.broadcasts import verdict
from hub.platform.db import utcnow
from hub.models import Audience, Broadcast, Channel
from hub.models.broadcasts import RECIPIENT_STATUSES, SUBSCRIPTIONS
from hub.web.api.auth import authenticate, require_role
from hub.web.api.fields import Id, Int, Moment, Text
from hub.web.api.parsing import Blueprint
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("broadcasts", __name__, description="Broadcasts: audiences, consent-aware pre-send verdicts, "
                "paced sending under WhatsApp's limits with auto-pause, per-recipient results.")
blp.before_request(authenticate)

VARIABLES_HELP = ('template body variables in order ([{"column": "first_name"}, {"contact": "name"}, '
                  '{"crm": "stage_name"}, {"value": "10%"}]), or by name for named templates '
                  '({"first_name": {"column": "name"}}). A CRM source is what the connector last reported '
                  'for the contact\'s deal: stage_name, stage, outcome, deal_id or pipeline, of the deal '
                  'changed last or of one pipeline ({"crm": "stage_name", "pipeline": "sales"}); '
                  'recipients without it are skipped as missing_variables')


def _refuse(status: int, field: str, message: str, rows: list[dict[str, Any]] | None = None) -> NoReturn:
    errors: dict[str, Any] = {"json": {field: [message]}}
    if rows:
        errors["rows"] = rows  # {row, phone, missing}: which rows to fix, and what
    abort(status, message=message, errors=errors)


class AudienceOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    segment = fields.Dict(allow_none=True)
    columns = fields.List(fields.String())
    accepted = fields.Integer()
    refused = fields.Integer()
    refused_by_reason = fields.Dict()
    created_at = fields.String()


class AudienceDetail(AudienceOut):
    refused_rows = fields.List(fields.Dict(), metadata={"description": "{row, phone, reason, detail}"})


SEGMENT_HELP = ("filters, all must hold: " + ", ".join(sorted(SEGMENT_KEYS)) + '; e.g. {"tags_any": ["vip", "new"], '
                '"field": {"name": "city", "equals": "Berlin"}, "crm_stage": {"stage": "won", "pipeline": "sales"}, '
                '"last_message_within_days": 30}; a field without "equals" means "is set"')


class SegmentIn(Schema):
    name = Text(200, min_length=1, required=True)
    segment = fields.Dict(keys=Text(64), required=True, metadata={"description": SEGMENT_HELP})


class SegmentCountIn(Schema):
    segment = fields.Dict(keys=Text(64), required=True, metadata={"description": SEGMENT_HELP})


class SegmentCountOut(Schema):
    count = fields.Integer(metadata={"description": "contacts with a phone the segment matches now"})
    segment = fields.Dict(metadata={"description": "the segment as checked and normalised"})


class CsvQuery(Schema):
    name = Text(200, min_length=1, required=True)
    region = Text(2, min_length=2, load_default=None, metadata={
        "description": "ISO country for numbers written without the country code, e.g. RU"})
    subscription = Text(16, validate=validate.OneOf(SUBSCRIPTIONS), load_default="marketing")


def _audience(session: Any, audience_id: int) -> Audience:
    return api_get_or_404(session, Audience, audience_id, "audience")


@blp.route("/audiences")
class Audiences(MethodView):
    @blp.response(200, AudienceOut(many=True))
    def get(self):
        with db().scope() as session:
            return [audiences.summary(a) for a in session.scalars(select(Audience).order_by(Audience.id.desc()))]

    @require_role("admin", "operator")
    @blp.arguments(SegmentIn)
    @blp.response(201, AudienceOut)
    def post(self, body: dict[str, Any]):
        """A segment: contacts matching the filters when a broadcast is made of it."""
        try:
            with db().scope() as session:
                return audiences.summary(audiences.create_segment(session, name=body["name"],
                                                                  segment=body["segment"], now=utcnow()))
        except SegmentProblem as exc:
            _refuse(422, f"segment.{exc.field}", f"segment.{exc.field}: {exc}")


@blp.route("/audiences/count")
class AudienceCount(MethodView):
    @blp.arguments(SegmentCountIn)
    @blp.response(200, SegmentCountOut)
    def post(self, body: dict[str, Any]):
        """How many contacts a segment matches now, before it is saved; refused as saving
        it would be (422 naming the part at fault). Writes nothing."""
        try:
            with db().scope() as session:
                segment = segments.check_known(session, body["segment"])
                return {"count": segments.count(session, segment, now=utcnow()), "segment": segment}
        except SegmentProblem as exc:
            _refuse(422, f"segment.{exc.field}", f"segment.{exc.field}: {exc}")


@blp.route("/audiences/csv")
class CsvAudiences(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(CsvQuery, location="query")
    @blp.response(201, AudienceDetail)
    @blp.doc(requestBody={"content": {"text/csv": {"schema": {"type": "string"}},
                                      "multipart/form-data": {"schema": {"type": "object", "properties": {
                                          "file": {"type": "string", "format": "binary"}}}}}})
    def post(self, query: dict[str, Any]):
        """Upload a CSV: a phone column and any others (template variables); UTF-8 or
        Windows-1251, ';' or ','. Refused rows come back with their reason."""
        upload = request.files.get("file")
        data = upload.read() if upload is not None else request.get_data()
        try:
            with db().scope() as session:
                audience = audiences.create_from_csv(session, name=query["name"], data=data,
                                                     region=query["region"] and query["region"].upper(),
                                                     subscription=query["subscription"], now=utcnow())
                return {**audiences.summary(audience), "refused_rows": audience.refused}
        except CsvProblem as exc:
            _refuse(422, exc.field, str(exc))


@blp.route("/audiences/<id:audience_id>")
class AudienceItem(MethodView):
    @blp.response(200, AudienceDetail)
    def get(self, audience_id: int):
        with db().scope() as session:
            audience = _audience(session, audience_id)
            return {**audiences.summary(audience), "refused_rows": audience.refused}


class ComposeIn(Schema):
    channel_id = Id(Channel, required=True)
    audience_id = Id(Audience, required=True)
    template_name = Text(512, min_length=1, required=True)
    template_language = Text(16, min_length=1, required=True)
    variables = fields.Raw(load_default=list, metadata={"description": VARIABLES_HELP})
    header = fields.Raw(load_default=None, allow_none=True, metadata={
        "description": 'the header parameter: a text, or {"type": "image", "image": {"link": "https://..."}}'})
    buttons = fields.List(fields.Dict(keys=Text(32)), load_default=None, allow_none=True,
                          validate=validate.Length(max=10),
                          metadata={"description": 'button parameters: [{"index": 0, "sub_type": "url", "text": "x"}]'})


class BroadcastIn(ComposeIn):
    name = Text(200, min_length=1, required=True)
    start_at = Moment(load_default=None, allow_none=True, metadata={"description": "none: as soon as started"})
    timezone = Text(64, min_length=1, load_default="UTC", metadata={"description": "IANA name, e.g. Europe/Moscow"})
    allowed_days = fields.List(Int(1, 7), load_default=None, allow_none=True, validate=validate.Length(1, 7),
                               metadata={"description": "ISO weekdays: 1 = Monday ... 7 = Sunday"})
    window_start = Text(5, min_length=5, load_default="00:00", metadata={"description": "HH:MM, local"})
    window_end = Text(5, min_length=5, load_default="24:00", metadata={"description": "HH:MM, local"})
    failure_threshold = fields.Float(load_default=0.2, validate=validate.Range(0, 1, min_inclusive=False))
    failure_window = Int(1, 10000, load_default=50)
    start = fields.Boolean(load_default=False, metadata={"description": "schedule it at once (else a draft)"})


class VerdictOut(Schema):
    audience = fields.Dict(allow_none=True, metadata={
        "description": "what the audience is: id, name, kind and a segment's filters, or a CSV's columns, "
                       "accepted and refused rows"})
    would_send = fields.Integer()
    skipped = fields.Integer()
    skipped_by_reason = fields.Dict()
    template = fields.Dict()
    cost = fields.Dict(metadata={"description": "currency, total, lines by category and country (list rates)"})
    messaging_limit = fields.Dict(metadata={"description": "tier, limit, used_24h, left, needed, fits"})
    preview = fields.List(fields.Dict())
    problems = fields.List(fields.String())


class BroadcastOut(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    channel_id = fields.Integer()
    audience_id = fields.Integer(allow_none=True)
    template_name = fields.String()
    template_language = fields.String()
    subscription = fields.String()
    variables = fields.Raw()
    start_at = fields.String(allow_none=True)
    timezone = fields.String()
    allowed_days = fields.List(fields.Integer())
    window_start = fields.String()
    window_end = fields.String()
    paused_reason = fields.String(allow_none=True)
    paused_by = fields.String(allow_none=True)
    retry_of_id = fields.Integer(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    results = fields.Dict(metadata={"description": "counts, funnel, cost"})


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def broadcast_out(session: Any, b: Broadcast) -> dict[str, Any]:
    return {"id": b.id, "name": b.name, "status": b.status, "channel_id": b.channel_id, "audience_id": b.audience_id,
            "template_name": b.template_name, "template_language": b.template_language,
            "subscription": b.subscription, "variables": b.variables, "start_at": _iso(b.start_at),
            "timezone": b.timezone, "allowed_days": b.allowed_days, "window_start": b.window_start,
            "window_end": b.window_end, "paused_reason": b.paused_reason, "paused_by": b.paused_by,
            "retry_of_id": b.retry_of_id, "started_at": _iso(b.started_at), "finished_at": _iso(b.finished_at),
            "results": results.funnel(session, b)}


def _problem(exc: lifecycle.BroadcastProblem) -> NoReturn:
    _refuse(exc.status, exc.field, str(exc), exc.rows)


@blp.route("/broadcasts/verdict")
class Verdict(MethodView):
    @blp.arguments(ComposeIn)
    @blp.response(200, VerdictOut)
    def post(self, body: dict[str, Any]):
        """What a broadcast of this audience and template would do: sent, skipped and why,
        cost by category and country, messaging-limit room, a preview. Sends nothing."""
        runtime = current_runtime()
        try:
            with runtime.db.scope() as session:
                return verdict.for_composition(session, config=runtime.config, now=utcnow(), **body)
        except lifecycle.BroadcastProblem as exc:
            _problem(exc)


class BroadcastQuery(Schema):
    status = Text(16, validate=validate.OneOf(("draft", "scheduled", "sending", "paused", "completed",
                                               "cancelled")))


@blp.route("/broadcasts")
class Broadcasts(MethodView):
    @blp.arguments(BroadcastQuery, location="query")
    @blp.response(200, BroadcastOut(many=True))
    def get(self, query: dict[str, Any]):
        with db().scope() as session:
            q = select(Broadcast).order_by(Broadcast.id.desc()).limit(200)
            if query.get("status"):
                q = q.where(Broadcast.status == query["status"])
            return [broadcast_out(session, b) for b in session.scalars(q)]

    @require_role("admin", "operator")
    @blp.arguments(BroadcastIn)
    @blp.response(201, BroadcastOut)
    def post(self, body: dict[str, Any]):
        """Make a broadcast (a draft, or scheduled with start: true). Refused as a whole,
        naming the field and rows, when any recipient could not be composed."""
        now = utcnow()
        start = body.pop("start")
        try:
            with db().scope() as session:
                broadcast = lifecycle.create(session, now=now, **body)
                if start:
                    lifecycle.start(session, broadcast.id, now=now)
                return broadcast_out(session, broadcast)
        except lifecycle.BroadcastProblem as exc:
            _problem(exc)


def _get(session: Any, broadcast_id: int) -> Broadcast:
    return api_get_or_404(session, Broadcast, broadcast_id, "broadcast")


@blp.route("/broadcasts/<id:broadcast_id>")
class BroadcastItem(MethodView):
    @blp.response(200, BroadcastOut)
    def get(self, broadcast_id: int):
        with db().scope() as session:
            return broadcast_out(session, _get(session, broadcast_id))


def _action(broadcast_id: int, act: Any) -> dict[str, Any]:
    try:
        with db().scope() as session:
            _get(session, broadcast_id)
            return broadcast_out(session, act(session, broadcast_id, utcnow()))
    except lifecycle.BroadcastProblem as exc:
        _problem(exc)


@blp.route("/broadcasts/<id:broadcast_id>/start")
class Start(MethodView):
    @require_role("admin", "operator")
    @blp.response(200, BroadcastOut)
    def post(self, broadcast_id: int):
        """draft -> scheduled: sends from start_at (now when none), inside its schedule."""
        return _action(broadcast_id, lambda s, i, now: lifecycle.start(s, i, now=now))


@blp.route("/broadcasts/<id:broadcast_id>/pause")
class Pause(MethodView):
    @require_role("admin", "operator")
    @blp.response(200, BroadcastOut)
    def post(self, broadcast_id: int):
        """Stop queueing; queued messages no sender has taken go back to waiting."""
        return _action(broadcast_id, lambda s, i, now: lifecycle.pause(s, i, pauses.by_hand(), now=now))


@blp.route("/broadcasts/<id:broadcast_id>/resume")
class Resume(MethodView):
    @require_role("admin", "operator")
    @blp.response(200, BroadcastOut)
    def post(self, broadcast_id: int):
        return _action(broadcast_id, lambda s, i, now: lifecycle.resume(s, i, now=now))


@blp.route("/broadcasts/<id:broadcast_id>/cancel")
class Cancel(MethodView):
    @require_role("admin", "operator")
    @blp.response(200, BroadcastOut)
    def post(self, broadcast_id: int):
        """Stop for good: whoever was not sent to yet is skipped (cancelled)."""
        return _action(broadcast_id, lambda s, i, now: lifecycle.cancel(s, i, now=now))


@blp.route("/broadcasts/<id:broadcast_id>/retry-failed")
class RetryFailed(MethodView):
    @require_role("admin", "operator")
    @blp.response(201, BroadcastOut)
    def post(self, broadcast_id: int):
        """A new draft broadcast of the failures worth retrying (131049, 130472, ...)."""
        return _action(broadcast_id, lambda s, i, now: lifecycle.retry_failed(s, s.get(Broadcast, i), now=now))


class RecipientQuery(Schema):
    status = Text(16, validate=validate.OneOf(RECIPIENT_STATUSES))
    limit = Int(1, 1000, load_default=100)
    offset = Int(0, 10_000_000, load_default=0)


class RecipientOut(Schema):
    id = fields.Integer()
    phone = fields.String()
    status = fields.String()
    reason = fields.String(allow_none=True)
    error_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "Meta's error in plain words"})
    message_id = fields.Integer(allow_none=True)
    wa_message_id = fields.String(allow_none=True)
    cost = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)


@blp.route("/broadcasts/<id:broadcast_id>/recipients")
class Recipients(MethodView):
    @blp.arguments(RecipientQuery, location="query")
    @blp.response(200, RecipientOut(many=True))
    def get(self, query: dict[str, Any], broadcast_id: int):
        with db().scope() as session:
            return list(results.rows(session, _get(session, broadcast_id), status=query.get("status"),
                                     limit=query["limit"], offset=query["offset"]))


@blp.route("/broadcasts/<id:broadcast_id>/results.csv")
class ResultsCsv(MethodView):
    @blp.response(200, content_type="text/csv")
    def get(self, broadcast_id: int):
        """Every recipient with its outcome, and the upload's refused rows."""
        with db().scope() as session:
            text = results.export_csv(session, _get(session, broadcast_id))
        return Response(text, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="broadcast-{broadcast_id}.csv"'})
