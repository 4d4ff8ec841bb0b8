"""/api/v1/reports: the period's figures (with the previous period beside them) and one
row per conversation as CSV, streamed."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator

from flask import Response, send_file, stream_with_context
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import Channel, ReportRun, ReportSchedule, Team, User
from hub.reports.export import csv_chunks, xlsx_file
from hub.reports import aggregate, facts, funnels
from hub.reports.rows import Filters
from hub.reports.runs import SECTIONS, produce, when_of
from hub.reports.schedule import FREQUENCIES, ScheduleError, When, check, due
from hub.web.api.auth import authenticate, require_role
from hub.web.api.fields import Id, Int, Moment, Text
from hub.web.api.parsing import Blueprint
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("reports", __name__, url_prefix="/reports",
                description="Metrics of the conversations opened in a period (docs/metrics.md) and their export.")
blp.before_request(authenticate)

MAX_SPAN = timedelta(days=366)


class PeriodQuery(Schema):
    start = Moment(required=True, data_key="from", metadata={"description": "ISO 8601, inclusive"})
    end = Moment(required=True, data_key="to", metadata={"description": "ISO 8601, exclusive"})
    channel_id = Id(Channel)
    team_id = Id(Team)
    assignee_id = Id(User)
    source = Text(200, metadata={"description": "as counted in by_source: a UTM source, else tracked_link or ad, "
                                                "else (direct)"})
    missed_minutes = Int(1, 7 * 24 * 60, load_default=15,
                         metadata={"description": "a chat with no human reply within this many business minutes "
                                                  "of the customer's first message is missed"})

    @validates_schema
    def _period(self, data: dict[str, Any], **_: Any) -> None:
        if "start" in data and "end" in data:
            if data["end"] <= data["start"]:
                raise ValidationError("must be after 'from'", "to")
            if data["end"] - data["start"] > MAX_SPAN:
                raise ValidationError("a period is at most 366 days", "to")


class SummaryOut(Schema):
    period = fields.Dict()
    figures = fields.Dict()
    previous = fields.Dict(metadata={"description": "the same figures for the period just before"})


def _filters(args: dict[str, Any], *, shift: timedelta = timedelta(0)) -> Filters:
    return Filters(start=args["start"] - shift, end=args["end"] - shift, channel_id=args.get("channel_id"),
                   team_id=args.get("team_id"), assignee_id=args.get("assignee_id"),
                   missed_seconds=args["missed_minutes"] * 60, source=args.get("source") or None)


@blp.route("/summary")
class Summary(MethodView):
    @blp.arguments(PeriodQuery, location="query")
    @blp.response(200, SummaryOut)
    def get(self, args: dict[str, Any]):
        """Conversations, first response and response times (median, p90, histogram),
        missed chats, resolution, SLA met %, per operator, team, source and campaign (with
        deals, won deals and revenue), the funnel, costs per lead and won deal; the template
        and broadcast funnels (`templates`, `broadcasts`: sent, delivered, read, replied,
        failed, cost)."""
        now = utcnow()
        span = args["end"] - args["start"]
        database = db()
        facts.catch_up(database, now=now)
        with database.scope() as session:
            figures, previous = (
                {**aggregate.summary(session, f, now=now), **funnels.funnels(session, f)}
                for f in (_filters(args), _filters(args, shift=span)))
            return {"period": {"from": args["start"].isoformat(), "to": args["end"].isoformat()},
                    "figures": figures, "previous": previous}


@blp.route("/conversations.csv")
class Export(MethodView):
    @blp.arguments(PeriodQuery, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args: dict[str, Any]):
        """One row per conversation opened in the period, streamed."""
        database = db()
        filters = _filters(args)
        now = utcnow()

        def generate() -> Iterator[str]:
            with database.scope() as session:
                yield from csv_chunks(session, filters, now=now)

        return Response(stream_with_context(generate()), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{_name(args, "csv")}"'})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _name(args: dict[str, Any], extension: str) -> str:
    return f"conversations-{args['start']:%Y%m%d}-{args['end']:%Y%m%d}.{extension}"


@blp.route("/conversations.xlsx")
class ExportXlsx(MethodView):
    @blp.arguments(PeriodQuery, location="query")
    @blp.response(200, content_type=XLSX)
    def get(self, args: dict[str, Any]):
        """The same rows as the CSV, as a spreadsheet (written row by row to a temporary
        file, then sent from it)."""
        with db().scope() as session:
            spool = xlsx_file(session, _filters(args), now=utcnow())
        return send_file(spool, mimetype=XLSX, as_attachment=True, download_name=_name(args, "xlsx"))


class ScheduleIn(Schema):
    name = Text(200, min_length=1, required=True)
    enabled = fields.Boolean(load_default=True)
    frequency = Text(8, required=True, validate=validate.OneOf(FREQUENCIES))
    at_time = Text(5, required=True, metadata={"description": "HH:MM in time_zone"})
    weekday = Int(0, 6, load_default=0, metadata={"description": "weekly: 0 = Monday"})
    day_of_month = Int(1, 28, load_default=1, metadata={"description": "monthly: 1-28"})
    time_zone = Text(64, load_default="UTC")
    channel_id = Id(Channel, allow_none=True, load_default=None)
    team_id = Id(Team, allow_none=True, load_default=None)
    source = Text(200, allow_none=True, load_default=None, metadata={"description": "only this lead source"})
    missed_minutes = Int(1, 7 * 24 * 60, load_default=15)
    recipients = fields.List(fields.Email(validate=validate.Length(max=254)), load_default=list,
                             validate=validate.Length(max=100))
    webhook = fields.Boolean(load_default=False, metadata={"description": "emit report.ready to the connectors"})
    sections = fields.List(Text(16, validate=validate.OneOf(SECTIONS)), load_default=list,
                           validate=validate.Length(max=len(SECTIONS)),
                           metadata={"description": "added to the headline figures: templates (the template "
                                                    "funnels), broadcasts (the broadcast funnels)"})


class SchedulePatch(ScheduleIn):
    """ScheduleIn, every field optional."""


class ScheduleOut(Schema):
    id = fields.Integer()
    name = fields.String()
    enabled = fields.Boolean()
    frequency = fields.String()
    at_time = fields.String()
    weekday = fields.Integer()
    day_of_month = fields.Integer()
    time_zone = fields.String()
    channel_id = fields.Integer(allow_none=True)
    team_id = fields.Integer(allow_none=True)
    source = fields.String(allow_none=True)
    missed_minutes = fields.Integer()
    recipients = fields.List(fields.String())
    webhook = fields.Boolean()
    sections = fields.List(fields.String())
    next_period = fields.Dict(metadata={"description": "the period the next firing covers"})


class RunOut(Schema):
    id = fields.Integer()
    period_start = fields.String()
    period_end = fields.String()
    status = fields.String(metadata={"description": "sending | sent | failed"})
    error = fields.String()
    manual = fields.Boolean()
    sent_at = fields.String(allow_none=True)
    figures = fields.Dict(allow_none=True)


_FILTER_KEYS = ("channel_id", "team_id", "source", "missed_minutes")


def _schedule_out(s: ReportSchedule) -> dict[str, Any]:
    f = s.filters or {}
    now = utcnow()
    start, end = due(when_of(s), now)
    following = due(when_of(s), end + (end - start) + timedelta(minutes=1))
    return {"id": s.id, "name": s.name, "enabled": s.enabled, "frequency": s.frequency, "at_time": s.at_time,
            "weekday": s.weekday, "day_of_month": s.day_of_month, "time_zone": s.time_zone,
            "channel_id": f.get("channel_id"), "team_id": f.get("team_id"), "source": f.get("source"),
            "missed_minutes": f.get("missed_minutes", 15), "recipients": s.recipients or [], "webhook": s.webhook,
            "sections": s.sections or [],
            "next_period": {"from": following[0].isoformat(), "to": following[1].isoformat()}}


def _save(session, body: dict[str, Any], schedule: ReportSchedule | None = None) -> ReportSchedule:
    """Checked whole, then written: a bad field is refused by name, nothing half-saved."""
    merged = {**(_schedule_out(schedule) if schedule else {}), **body}
    errors: dict[str, list[str]] = {}
    try:
        check(When(merged["frequency"], merged["at_time"], merged.get("time_zone", "UTC"), merged.get("weekday", 0),
                   merged.get("day_of_month", 1)))
    except ScheduleError as exc:
        field, _, message = str(exc).partition(": ")
        errors[field] = [message]
    if not merged.get("recipients") and not merged.get("webhook"):
        errors["recipients"] = ["give at least one recipient, or webhook: true"]
    clash = session.scalar(select(ReportSchedule.id).where(ReportSchedule.name == merged["name"]))
    if clash is not None and (schedule is None or clash != schedule.id):
        errors["name"] = [f"a report named {merged['name']!r} already exists"]
    if errors:
        abort(422, message="invalid report schedule", errors={"json": errors})
    now = utcnow()
    if schedule is None:
        schedule = ReportSchedule(created_at=now)
        session.add(schedule)
    for key in ("name", "enabled", "frequency", "at_time", "weekday", "day_of_month", "time_zone", "recipients",
                "webhook"):
        if key in merged:
            setattr(schedule, key, merged[key])
    schedule.sections = [key for key in SECTIONS if key in merged.get("sections", [])]
    schedule.filters = {k: merged[k] for k in _FILTER_KEYS if merged.get(k) is not None}
    schedule.updated_at = now
    session.flush()
    return schedule


def _schedule(session, schedule_id: int) -> ReportSchedule:
    return api_get_or_404(session, ReportSchedule, schedule_id, "report schedule")


schedules = Blueprint("report_schedules", __name__, url_prefix="/report-schedules",
                      description="Reports sent by e-mail and webhook every day, week or month.")
schedules.before_request(authenticate)


@schedules.route("")
class Schedules(MethodView):
    @schedules.response(200, ScheduleOut(many=True))
    def get(self):
        with db().scope() as session:
            return [_schedule_out(s) for s in session.scalars(select(ReportSchedule).order_by(ReportSchedule.name))]

    @require_role("admin")
    @schedules.arguments(ScheduleIn)
    @schedules.response(201, ScheduleOut)
    def post(self, body: dict[str, Any]):
        with db().scope() as session:
            return _schedule_out(_save(session, body))


@schedules.route("/<id:schedule_id>")
class ScheduleItem(MethodView):
    @schedules.response(200, ScheduleOut)
    def get(self, schedule_id: int):
        with db().scope() as session:
            return _schedule_out(_schedule(session, schedule_id))

    @require_role("admin")
    @schedules.arguments(SchedulePatch(partial=True))
    @schedules.response(200, ScheduleOut)
    def patch(self, body: dict[str, Any], schedule_id: int):
        with db().scope() as session:
            return _schedule_out(_save(session, body, _schedule(session, schedule_id)))

    @require_role("admin")
    @schedules.response(204)
    def delete(self, schedule_id: int):
        with db().scope() as session:
            session.delete(_schedule(session, schedule_id))


@schedules.route("/<id:schedule_id>/runs")
class Runs(MethodView):
    @schedules.response(200, RunOut(many=True))
    def get(self, schedule_id: int):
        """What was sent, newest first: its period, status and why it failed."""
        with db().scope() as session:
            _schedule(session, schedule_id)
            found = session.scalars(select(ReportRun).where(ReportRun.schedule_id == schedule_id)
                                    .order_by(ReportRun.id.desc()).limit(100))
            return [{"id": r.id, "period_start": r.period_start.isoformat(), "period_end": r.period_end.isoformat(),
                     "status": r.status, "error": r.error, "manual": r.manual,
                     "sent_at": r.sent_at.isoformat() if r.sent_at else None, "figures": r.figures} for r in found]


@schedules.route("/<id:schedule_id>/send")
class SendNow(MethodView):
    @require_role("admin")
    @schedules.response(201, RunOut)
    def post(self, schedule_id: int):
        """Send now: the period from the last firing up to this moment."""
        runtime = current_runtime()
        now = utcnow()
        with runtime.db.scope() as session:
            _before, last_firing = due(when_of(_schedule(session, schedule_id)), now)
        run_id = produce(runtime, schedule_id, last_firing, now, now=now, manual=True)
        with runtime.db.scope() as session:
            r = session.get(ReportRun, run_id)
            return {"id": r.id, "period_start": r.period_start.isoformat(), "period_end": r.period_end.isoformat(),
                    "status": r.status, "error": r.error, "manual": r.manual,
                    "sent_at": r.sent_at.isoformat() if r.sent_at else None, "figures": r.figures}
