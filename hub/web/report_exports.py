"""GET /reports/exports/<run id>.csv?expires=...&signature=...: a report run's export
(its period and filters) through the signed link its e-mail and report.ready carry
(hub.reports.links), for readers without a login or API token. Streamed like the
API's export; the rows are read when the link is opened."""
from __future__ import annotations

from typing import Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context

from hub.platform.db import utcnow
from hub.models import ReportRun, ReportSchedule
from hub.reports.export import csv_chunks
from hub.reports.links import ExportLinks
from hub.reports.runs import export_filters

bp = Blueprint("report_exports", __name__)


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain",
                    headers={"Cache-Control": "no-store"})


@bp.get("/reports/exports/<int:run_id>.csv")
def signed_export(run_id: int) -> Response:
    runtime = current_app.extensions["hub"]
    now = utcnow()
    problem = ExportLinks.from_runtime(runtime).check(
        run_id, request.args.get("expires", ""), request.args.get("signature", ""), now=now)
    if problem:
        return _text(problem, 403)
    db = runtime.db
    with db.scope() as session:
        run = session.get(ReportRun, run_id)
        schedule = session.get(ReportSchedule, run.schedule_id) if run is not None else None
        if run is None or schedule is None:
            return _text(f"There is no report run {run_id} (its report may have been deleted).", 404)
        filters = export_filters(run, schedule)
    name = f"conversations-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"

    def generate() -> Iterator[str]:
        with db.scope() as session:
            yield from csv_chunks(session, filters, now=now)

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private"})
