"""/api/v1/reports: the period's figures (with the previous period beside them) and one
row per conversation as CSV, streamed."""
from __future__ import annotations

import csv
import io
import tempfile
from datetime import timedelta
from typing import Any, Iterator

from flask import Response, current_app, send_file, stream_with_context
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validates_schema

from hub.db import utcnow
from hub.models import Channel, Team, User
from hub.reports.rows import COLUMNS, Filters, rows, summary
from hub.web.api.auth import authenticate
from hub.web.api.fields import Id, Int, Moment
from hub.web.api.parsing import Blueprint

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
                   missed_seconds=args["missed_minutes"] * 60)


@blp.route("/summary")
class Summary(MethodView):
    @blp.arguments(PeriodQuery, location="query")
    @blp.response(200, SummaryOut)
    def get(self, args: dict[str, Any]):
        """Conversations, first response and response times (median, p90, histogram),
        missed chats, resolution, per operator, team, source and campaign, costs."""
        now = utcnow()
        span = args["end"] - args["start"]
        with current_app.extensions["hub"].db.scope() as session:
            return {"period": {"from": args["start"].isoformat(), "to": args["end"].isoformat()},
                    "figures": summary(session, _filters(args), now=now),
                    "previous": summary(session, _filters(args, shift=span), now=now)}


@blp.route("/conversations.csv")
class Export(MethodView):
    @blp.arguments(PeriodQuery, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args: dict[str, Any]):
        """One row per conversation opened in the period, streamed."""
        db = current_app.extensions["hub"].db
        filters = _filters(args)
        now = utcnow()

        def generate() -> Iterator[str]:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            with db.scope() as session:
                for row in rows(session, filters, now=now):
                    writer.writerow([_csv_cell(c, row[c]) for c in COLUMNS])
                    if out.tell() > 64 * 1024:
                        yield out.getvalue()
                        out.seek(0)
                        out.truncate()
            yield out.getvalue()

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
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        book = Workbook(write_only=True)
        sheet = book.create_sheet("Conversations")
        sheet.append(list(COLUMNS))

        def cell(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            text = WriteOnlyCell(sheet, value=value)
            text.data_type = "s"  # never a formula, whatever the customer typed
            return text

        with current_app.extensions["hub"].db.scope() as session:
            for row in rows(session, _filters(args), now=utcnow()):
                sheet.append([cell(row[c]) for c in COLUMNS])
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        book.save(spool)
        spool.seek(0)
        return send_file(spool, mimetype=XLSX, as_attachment=True, download_name=_name(args, "xlsx"))


# Texts that come from customers, campaigns and settings: a spreadsheet opening the CSV
# would run one starting with = + - @ as a formula, so it gets a leading apostrophe.
FREE_TEXT = frozenset({"channel", "contact_name", "operator", "team", "utm_source", "utm_medium", "utm_campaign"})


def _csv_cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column in FREE_TEXT and isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
