"""Sending scheduled reports: each period of each schedule once.

A run row (unique per schedule and period end) is written before anything leaves, so
however often the scheduler looks, and whichever process looks, a period is sent at
most once; a hub that was down over a firing sends the latest missed period when it
is back (hub.reports.schedule.due). What was sent, to whom and why it failed stays in
the run's history; "send now" makes a run of the period up to the moment.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.shared.config_errors import ConfigError
from hub.events.outbox import emit
from hub.models import ReportRun, ReportSchedule
from hub.reports import aggregate, facts, funnels, mail
from hub.reports.export import csv_chunks
from hub.reports.links import ExportLinks
from hub.reports.rows import Filters
from hub.reports.schedule import When, due

log = logging.getLogger(__name__)
# The parts a schedule may add to the headline figures: the template and the broadcast funnels.
SECTIONS = ("templates", "broadcasts")


def when_of(schedule: ReportSchedule) -> When:
    return When(schedule.frequency, schedule.at_time, schedule.time_zone, schedule.weekday, schedule.day_of_month)


def filters_of(schedule: ReportSchedule, start: datetime, end: datetime) -> Filters:
    f = schedule.filters or {}
    return Filters(start=start, end=end, channel_id=f.get("channel_id"), team_id=f.get("team_id"),
                   missed_seconds=int(f.get("missed_minutes") or 15) * 60, source=f.get("source") or None)


def export_filters(run: ReportRun, schedule: ReportSchedule) -> Filters:
    """The period and filters a run's export covers: those it was made with (a run from
    before they were kept: its schedule's)."""
    kept = (run.figures or {}).get("filters")
    if kept is None:
        return filters_of(schedule, run.period_start, run.period_end)
    return Filters(start=run.period_start, end=run.period_end, channel_id=kept.get("channel_id"),
                   team_id=kept.get("team_id"), missed_seconds=kept.get("missed_seconds", 15 * 60),
                   source=kept.get("source"))


def figures_of(session: Any, schedule: ReportSchedule, f: Filters, *, now: datetime) -> dict[str, Any]:
    """The summary, with the funnels the schedule chose."""
    figures = aggregate.summary(session, f, now=now)
    chosen = [key for key in SECTIONS if key in (schedule.sections or [])]
    if chosen:
        found = funnels.funnels(session, f)
        figures.update({key: found[key] for key in chosen})
    return figures


def run_due(runtime: Any, now: datetime, *, send_mail: Callable = mail.send) -> list[int]:
    """Send every schedule's latest period that has not been sent; the runs made."""
    with runtime.db.scope() as session:
        schedules = [(s.id, due(when_of(s), now)) for s in
                     session.scalars(select(ReportSchedule).where(ReportSchedule.enabled.is_(True)))]
        sent = {(r.schedule_id, r.period_end) for r in session.scalars(select(ReportRun).where(
            ReportRun.schedule_id.in_([sid for sid, _ in schedules]), ReportRun.manual.is_(False)))}
    made = []
    for schedule_id, (start, end) in schedules:
        if (schedule_id, end) in sent:
            continue
        run_id = produce(runtime, schedule_id, start, end, now=now, send_mail=send_mail)
        if run_id is not None:
            made.append(run_id)
    return made


def _charts(figures: dict[str, Any], start: datetime, end: datetime,
            counted: list[tuple[datetime, int]]) -> list[mail.Chart]:
    """The e-mail's charts; a chart that cannot be drawn leaves the e-mail without them
    (the figures are all in its text), never unsent."""
    try:
        return mail.report_charts(figures, start=start, end=end, per_slot=counted,
                                  first_response_histogram=figures["first_response_histogram"])
    except Exception:  # noqa: BLE001 - Pillow's errors are many; the report still goes
        log.exception("the charts of the report of %s - %s could not be drawn", start, end)
        return []


def _export_link(runtime: Any, run_id: int, now: datetime) -> tuple[str | None, datetime | None]:
    """The run's signed export link and its expiry; none (the report still goes, with
    the export attached) when this process has no secret key to sign with."""
    try:
        links = ExportLinks.from_runtime(runtime)
    except ConfigError as exc:
        log.warning("report run %s goes without an export link: %s", run_id, exc)
        return None, None
    return links.url(run_id, now=now), links.expiry(now)


def produce(runtime: Any, schedule_id: int, start: datetime, end: datetime, *, now: datetime, manual: bool = False,
            send_mail: Callable = mail.send) -> int | None:
    """Make and send the run of one period; None when another process made it first."""
    try:
        with runtime.db.scope() as session:
            run = ReportRun(schedule_id=schedule_id, period_start=start, period_end=end, status="sending",
                            error="", manual=manual, created_at=now)
            session.add(run)
            session.flush()
            run_id = run.id
    except IntegrityError:
        return None
    problems: list[str] = []
    facts.catch_up(runtime.db, now=now)
    with runtime.db.scope() as session:
        schedule = session.get(ReportSchedule, schedule_id)
        filters = filters_of(schedule, start, end)
        figures = figures_of(session, schedule, filters, now=now)
        previous = figures_of(session, schedule, filters_of(schedule, start - (end - start), start), now=now)
        counted = aggregate.per_slot(session, filters)
        export = "".join(csv_chunks(session, filters, now=now)).encode("utf-8")
        name, recipients, webhook = schedule.name, list(schedule.recipients or []), schedule.webhook
        period = f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC"
    export_url, expires = _export_link(runtime, run_id, now)
    if recipients:
        settings = runtime.config.reports
        message = mail.build(name=name, period=period, figures=figures, previous=previous,
                             sender=settings.from_address or "hub@localhost", recipients=recipients,
                             attachment=export, attachment_name=f"conversations-{start:%Y%m%d}-{end:%Y%m%d}.csv",
                             charts=_charts(figures, start, end, counted), export_url=export_url,
                             export_expires=f"{expires:%Y-%m-%d %H:%M} UTC" if expires else None)
        try:
            send_mail(message, settings)
        except mail.ReportMailError as exc:
            problems.append(f"e-mail: {exc}")
            log.warning("report %r (run %s) was not e-mailed: %s", name, run_id, exc)
    with runtime.db.scope() as session:
        run = session.get(ReportRun, run_id)
        run.figures = {"figures": figures, "previous": previous, "filters": {
            "channel_id": filters.channel_id, "team_id": filters.team_id, "missed_seconds": filters.missed_seconds,
            "source": filters.source}}
        if webhook:
            query = urlencode({"from": start.isoformat(), "to": end.isoformat(),
                               **{k: v for k, v in (("channel_id", filters.channel_id),
                                                    ("team_id", filters.team_id), ("source", filters.source)) if v}})
            emit(session, "report.ready", {"report": {
                "id": run_id, "name": name, "period_start": start.isoformat(), "period_end": end.isoformat(),
                "url": f"{runtime.config.base_url.rstrip('/')}/api/v1/reports/conversations.csv?{query}",
                "export_url": export_url, "export_expires_at": expires.isoformat() if expires else None,
                "figures": figures}}, now=now)
        run.status = "failed" if problems else "sent"
        run.error = "; ".join(problems)
        run.sent_at = now
    return run_id
