"""Reports in the admin: the documented metrics (docs/metrics.md) of a period beside the
period of the same length before it, charts drawn on the server, the conversations
behind every figure and bar, and the exports for a signed-in user. Every role reads.

The figures and the charts' counts come from the rollups (hub.reports.aggregate), as
the API's summary and the scheduled reports' do; the drill-down lists the conversations
behind a figure from their rows (hub.reports.rows), with the same definitions.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from flask import Response, render_template, request, send_file, stream_with_context, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import Channel, Team, User
from hub.reports import aggregate, facts, funnels, metrics
from hub.reports.export import csv_chunks, xlsx_file
from hub.reports.grouping import slot_label, slots
from hub.reports.rows import rows, source_of
from hub.routing.hours import zone
from hub.web.admin import bp, charts
from hub.web.admin.report_period import NONE, PRESETS, ReportInputError, ReportQuery, read_query
from hub.web.lookups import db

# The definitions shown beside the figures, in one place (docs/metrics.md says the same).
DEFINITIONS = {
    "conversations": _l("Conversations opened in the period. A request runs from a customer's first message to "
                        "its close; a message after the close opens a new conversation."),
    "closed": _l("Of the conversations opened in the period, those closed by now."),
    "answered": _l("Conversations a person has answered (automated replies answer nothing)."),
    "missed": _l("No human reply within the missed limit (business minutes of the team) of the customer's first "
                 "message; one still waiting counts once that time has passed."),
    "first_response": _l("From the customer's first message to the first human reply, in the team's business "
                         "hours; conversations nobody answered have none."),
    "first_response_p90": _l("Nine in ten first responses were at most this fast (nearest-rank 90th "
                             "percentile)."),
    "response": _l("Every human reply that answers something, measured from the customer's last message before "
                   "it (a burst is answered once)."),
    "resolution": _l("From the conversation's start to its close, closed conversations only."),
    "histogram": _l("First response times of the answered conversations, in buckets."),
    "by_operator": _l("Conversations assigned to each operator now."),
    "by_team": _l("Conversations per team routing gave them to."),
    "by_source": _l("Conversations per UTM source, else lead kind (tracked link, ad), else direct."),
    "sla_met": _l("Of the conversations whose team has an SLA and whose clocks are decided, the share where "
                  "every wait for a person ended within its target (first response, next response, "
                  "resolution; business time). A clock still under its target is not counted yet."),
    "deals": _l("Conversations with a deal in a CRM, as the CRM connectors report stage changes."),
    "won": _l("Conversations with a deal the CRM reports as won."),
    "funnel": _l("How far the period's conversations came: started, answered by a person, a deal, a won deal."),
    "leads": _l("Per lead source: conversations, deals, won deals, revenue (the amounts of won deals) and "
                "what WhatsApp billed for the conversations' messages; cost per lead divides it by the "
                "conversations, cost per won deal by the conversations with a won deal (— with none); "
                "ROMI is (revenue − cost) / cost when both are in one currency."),
    "campaigns": _l("The same per UTM campaign of the conversations' lead sources (conversations without one are "
                    "not listed)."),
    "sla_by_team": _l("SLA met % per team and per operator (operator: the one assigned now)."),
    "templates": _l("Template messages sent in the period, per template (name, language, category): sent = "
                    "accepted by WhatsApp, delivered, read, replied = the customer wrote within 24 hours after it "
                    "(in any of their conversations on the channel), failed; each stage counts the messages that "
                    "got at least that far (a reply was also delivered and read); percentages are of the sent "
                    "ones, failed of all; cost is what WhatsApp billed for them, cost per reply divides it by "
                    "the replies."),
    "broadcasts": _l("The same per broadcast: its template messages sent in the period."),
}

# (key, label, value from the figures, kind, better when, drill-down metric)
TILES: list[tuple[str, Any, Callable[[dict[str, Any]], Any], str, str, str]] = [
    ("conversations", _l("Conversations"), lambda f: f["conversations"], "count", "", "conversations"),
    ("closed", _l("Closed"), lambda f: f["closed"], "count", "up", "closed"),
    ("answered", _l("Answered"), lambda f: f["answered"], "count", "up", "answered"),
    ("missed", _l("Missed"), lambda f: f["missed"], "count", "down", "missed"),
    ("first_response", _l("First response, median"), lambda f: f["first_response_seconds"]["median"], "seconds",
     "down", "answered"),
    ("first_response_p90", _l("First response, p90"), lambda f: f["first_response_seconds"]["p90"], "seconds",
     "down", "answered"),
    ("response", _l("Response time, median"), lambda f: f["response_seconds"]["median"], "seconds", "down",
     "answered"),
    ("resolution", _l("Resolution, median"), lambda f: f["resolution_seconds"]["median"], "seconds", "down",
     "closed"),
    ("sla_met", _l("SLA met"), lambda f: f["sla"]["percent"], "percent", "up", "sla_met"),
    ("deals", _l("Deals"), lambda f: f["deals"], "count", "up", "deals"),
    ("won", _l("Won deals"), lambda f: f["won"], "count", "up", "won"),
]

# The conversations behind a count: the same tests Summary.add counts by.
DRILL: dict[str, Callable[[dict[str, Any]], bool]] = {
    "conversations": lambda r: True,
    "closed": lambda r: r["status"] == "closed",
    "answered": lambda r: r["first_response_seconds"] is not None,
    "missed": lambda r: bool(r["missed"]),
    "sla_met": lambda r: r["_sla"] is True,
    "sla_breached": lambda r: r["_sla"] is False,
    "deals": lambda r: r["_deals"].deals > 0,
    "won": lambda r: r["_deals"].won > 0,
}
DRILL_LABELS = {"conversations": _l("Conversations"), "closed": _l("Closed"), "answered": _l("Answered"),
                "missed": _l("Missed"), "sla_met": _l("SLA met"), "sla_breached": _l("SLA breached"),
                "deals": _l("Deals"), "won": _l("Won deals")}
STAGE_LABELS = {"sent": _l("Sent"), "delivered": _l("Delivered"), "read": _l("Read"), "replied": _l("Replied"),
                "failed": _l("Failed")}
FUNNEL_LABELS = {"started": (_l("Started"), "conversations"), "answered": (_l("Answered"), "answered"),
                 "deal": (_l("Deal"), "deals"), "won": (_l("Won"), "won")}
# The summary's names for "none" (hub.reports speaks English), shown translated.
NO_NAME = {"(unassigned)": _l("(unassigned)"), "(no team)": _l("(no team)"), "(direct)": _l("(direct)")}
BUCKET_LABELS = tuple(label for _bound, label in metrics.BUCKETS)
LIST_LIMIT = 1000


def change(current: float | None, previous: float | None, better: str = "") -> dict[str, str]:
    """The move from the previous period: arrow and percent, "—" when there is nothing to
    compare with (no previous figure, or zero); the tone says whether it is good news."""
    if current is None or previous is None or previous == 0:
        return {"arrow": "", "text": "—", "tone": "neutral"}
    percent = (current - previous) / previous * 100
    arrow = "↑" if percent > 0 else "↓" if percent < 0 else "→"
    tone = "neutral"
    if percent and better:
        tone = "good" if (percent > 0) == (better == "up") else "bad"
    return {"arrow": arrow, "text": f"{arrow} {abs(percent):.0f}%", "tone": tone}


def _matching(session: Any, q: ReportQuery, *, previous: bool = False) -> Iterator[dict[str, Any]]:
    """The period's rows; the drill-down's "no operator" and "no team" are tested here
    because hub.reports' filters only select by id."""
    for row in rows(session, q.filters(previous=previous), now=utcnow()):
        if q.no_assignee and row["_assignee_id"] is not None:
            continue
        if q.no_team and row["_team_id"] is not None:
            continue
        yield row


def _choices(session: Any) -> dict[str, Any]:
    return {"channels": list(session.scalars(select(Channel).order_by(Channel.name))),
            "teams": list(session.scalars(select(Team).order_by(Team.name))),
            "users": list(session.scalars(select(User).order_by(User.email)))}


def _kept() -> dict[str, str]:
    """The filters of this request, for the period links (which change only the period)."""
    return {k: request.args[k] for k in ("channel_id", "team_id", "assignee_id", "missed_minutes", "source")
            if request.args.get(k)}


def _error_page(exc: ReportInputError, template: str = "admin/reports.html", **context: Any) -> Any:
    with db().scope() as s:
        choices = _choices(s)
    return render_template(template, error=exc.message, q=None, presets=PRESETS, raw=request.args, kept=_kept(),
                           **choices, **context), exc.status


def _tiles(q: ReportQuery, now_f: dict[str, Any], before_f: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, label, value, kind, better, drill in TILES:
        current, previous = value(now_f), value(before_f)
        out.append({"key": key, "label": label, "value": current, "previous": previous, "kind": kind,
                    "change": change(current, previous, better), "definition": DEFINITIONS[key],
                    "href": url_for("admin.report_conversations", metric=drill, **q.args())})
    return out


def _template_chart(templates: list[dict[str, Any]]) -> Any:
    """The template messages of the period by stage, all templates together."""
    bars = [charts.Bar(str(label), sum(t[stage] for t in templates)) for stage, label in STAGE_LABELS.items()]
    return charts.horizontal_bars(bars, title=str(_l("Template messages by stage")))


def _charts(q: ReportQuery, figures: dict[str, Any], counted: list[tuple[datetime, int]],
            users: dict[str, int], teams: dict[str, int]) -> dict[str, Any]:
    _moments, step = slots(q.start, q.end)
    hourly = step < timedelta(days=1)
    series = [charts.Bar(slot_label(at.astimezone(zone(q.time_zone)), step), n,
                         url_for("admin.report_conversations", metric="conversations",
                                 **q.slot(at, at + step).args()))
              for at, n in counted]

    def drill(**over: Any) -> str:
        return url_for("admin.report_conversations", metric="conversations", **q.args(**over))

    def name(label: str) -> str:
        return str(NO_NAME.get(label, label))

    operators = [charts.Bar(name(o["operator"]), o["conversations"],
                            drill(assignee_id=users.get(o["operator"], NONE))) for o in figures["by_operator"]]
    team_bars = [charts.Bar(name(t["team"]), t["conversations"], drill(team_id=teams.get(t["team"], NONE)))
                 for t in figures["by_team"]]
    sources = [charts.Bar(name(s["source"]), s["conversations"], drill(source=s["source"])) for s in figures["by_source"]]
    funnel = [charts.Bar(str(FUNNEL_LABELS[step["stage"]][0]), step["conversations"],
                         url_for("admin.report_conversations", metric=FUNNEL_LABELS[step["stage"]][1], **q.args()))
              for step in figures["funnel"]]
    buckets = [charts.Bar(label, n, url_for("admin.report_conversations", metric="answered", bucket=label,
                                            **q.args())) for label, n in figures["first_response_histogram"].items()]
    return {
        "series": charts.columns(series, title=str(_l("Conversations per hour") if hourly
                                                   else _l("Conversations per day")), width=1180),
        "hourly": hourly,
        "operators": charts.horizontal_bars(operators, title=str(_l("Conversations per operator"))),
        "teams": charts.horizontal_bars(team_bars, title=str(_l("Conversations per team"))),
        "sources": charts.horizontal_bars(sources, title=str(_l("Conversations per source"))),
        "histogram": charts.columns(buckets, title=str(_l("First response times")), width=520, every=1),
        "funnel": charts.horizontal_bars(funnel, title=str(_l("Funnel"))),
        "templates": _template_chart(figures["templates"]),
    }


@bp.get("/reports")
def reports() -> Any:
    with db().scope() as s:
        try:
            q = read_query(request.args, s, now=utcnow())
        except ReportInputError as exc:
            s.rollback()
            return _error_page(exc)
        choices = _choices(s)
    now = utcnow()
    facts.catch_up(db(), now=now)
    with db().scope() as s:
        figures = {**aggregate.summary(s, q.filters(), now=now), **funnels.funnels(s, q.filters())}
        previous = aggregate.summary(s, q.filters(previous=True), now=now)
        counted = aggregate.per_slot(s, q.filters())
        users = {u.email: u.id for u in choices["users"]}
        teams = {t.name: t.id for t in choices["teams"]}
        chart_markup = _charts(q, figures, counted, users, teams)
    return render_template(
        "admin/reports.html", q=q, error=None, presets=PRESETS, raw=request.args, kept=_kept(), **choices,
        tiles=_tiles(q, figures, previous), figures=figures, previous=previous, charts=chart_markup,
        definitions=DEFINITIONS, previous_start=q.start - q.span, previous_end=q.end - q.span,
        no_name={k: str(v) for k, v in NO_NAME.items()},
        export_args=q.args())


@bp.get("/reports/conversations")
def report_conversations() -> Any:
    """The conversations behind a figure or a bar: exactly those it counts."""
    metric = request.args.get("metric", "conversations")
    bucket = request.args.get("bucket") or None
    source = request.args.get("source") or None
    with db().scope() as s:
        try:
            if metric not in DRILL:
                raise ReportInputError(400, _("Unknown figure '%(value)s'.", value=metric[:40]))
            if bucket is not None and bucket not in BUCKET_LABELS:
                raise ReportInputError(400, _("Unknown bucket '%(value)s'.", value=bucket[:40]))
            q = read_query(request.args, s, now=utcnow(), allow_none=True)
        except ReportInputError as exc:
            s.rollback()
            return _error_page(exc, "admin/report_conversations.html", metric=metric)
        keep = DRILL[metric]
        found, count = [], 0
        for row in _matching(s, q):
            if not keep(row) or (source is not None and source_of(row) != source):
                continue
            if bucket is not None and (row["first_response_seconds"] is None
                                       or metrics.bucket(row["first_response_seconds"]) != bucket):
                continue
            count += 1
            if len(found) < LIST_LIMIT:
                found.append(row)
        names = {"channel": s.get(Channel, q.channel_id).name if q.channel_id else None,
                 "team": s.get(Team, q.team_id).name if q.team_id else None,
                 "operator": s.get(User, q.assignee_id).email if q.assignee_id else None}
    back = {k: v for k, v in q.args().items() if not q.exact or k not in ("start", "end")}
    if q.exact:
        back.update({"from": q.first_day.isoformat(), "to": q.last_day.isoformat()})
    return render_template("admin/report_conversations.html", q=q, error=None, metric=metric,
                           metric_label=DRILL_LABELS[metric], bucket=bucket, source=source, rows=found,
                           count=count, limit=LIST_LIMIT, names=names, back=url_for("admin.reports", **back))


@bp.get("/reports/conversations.<any(csv, xlsx):kind>")
def report_export(kind: str) -> Any:
    """The API's export (hub.reports.export) for a signed-in user, same period and filters."""
    with db().scope() as s:
        try:
            q = read_query(request.args, s, now=utcnow())
        except ReportInputError as exc:
            return Response(exc.message + "\n", status=exc.status, mimetype="text/plain")
    name = f"conversations-{q.start:%Y%m%d}-{q.end:%Y%m%d}.{kind}"
    filters, now, database = q.filters(), utcnow(), db()
    if kind == "xlsx":
        with database.scope() as s:
            spool = xlsx_file(s, filters, now=now)
        return send_file(spool, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         as_attachment=True, download_name=name)

    def generate() -> Iterator[str]:
        with database.scope() as session:
            yield from csv_chunks(session, filters, now=now)

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
