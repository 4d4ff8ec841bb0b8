"""A report as an e-mail and sending it over SMTP as [reports] says. Refusals become
ReportMailError with what the server said.

The message: multipart/mixed of multipart/alternative (plain text with every figure,
for clients without HTML; multipart/related of the HTML and its charts as PNG images it
shows by cid: reference) and the export attached.
"""
from __future__ import annotations

import html
import secrets
import smtplib
import ssl
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Sequence

from hub.reports import charts_png
from hub.reports.grouping import slot_label, slots


class ReportMailError(Exception):
    """Why the report could not be sent (shown in the report's history)."""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def lines(figures: dict[str, Any], previous: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(label, this period, previous period) for the headline figures."""
    prev = previous or {}

    def pair(key: str, sub: str | None = None, fmt=str) -> tuple[str, str]:
        now_value = figures.get(key) if sub is None else (figures.get(key) or {}).get(sub)
        old_value = prev.get(key) if sub is None else (prev.get(key) or {}).get(sub)
        return fmt(now_value) if now_value is not None else "-", fmt(old_value) if old_value is not None else "-"

    return [
        ("Conversations", *pair("conversations")),
        ("Answered", *pair("answered")),
        ("Missed", *pair("missed")),
        ("First response, median", *pair("first_response_seconds", "median", _duration)),
        ("First response, 90th percentile", *pair("first_response_seconds", "p90", _duration)),
        ("Response time, median", *pair("response_seconds", "median", _duration)),
        ("Resolution, median", *pair("resolution_seconds", "median", _duration)),
        ("SLA met", *pair("sla", "percent", lambda v: f"{v}%")),
        ("Deals", *pair("deals")),
        ("Won deals", *pair("won")),
        ("Revenue", *pair("revenue", None, money)),
        ("Cost", *pair("cost", None, money)),
    ]


def money(amounts: list[dict[str, Any]] | None) -> str:
    return ", ".join(f"{m['amount']} {m['currency']}" for m in amounts or []) or "-"


def lead_lines(figures: dict[str, Any]) -> list[tuple[str, int, int, int, str, str]]:
    """(source, conversations, deals, won, revenue, cost) per lead source."""
    return [(s["source"], s["conversations"], s.get("deals", 0), s.get("won", 0), money(s.get("revenue")),
             money(s.get("cost"))) for s in figures.get("by_source", [])]


STAGE_COLUMNS = ("messages", "sent", "delivered", "read", "replied", "failed")


def funnel_lines(figures: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, ...]]]]:
    """(title, first column, rows) for the template and broadcast funnels a schedule
    chose (hub.reports.funnels); each row: the name, the stages, the cost."""
    out = []
    for key, title, first in (("templates", "Template funnels", "Template"), ("broadcasts", "Broadcasts", "Broadcast")):
        if key in figures:
            out.append((title, first, [
                (f"{row['template']} ({row['language']}, {row['category']})" if key == "templates" else row["name"],
                 *(str(row[stage]) for stage in STAGE_COLUMNS), money(row["cost"])) for row in figures[key]]))
    return out


@dataclass(frozen=True)
class Chart:
    """One chart of the e-mail: its bars (also written out in the text part) and PNG."""

    key: str
    title: str
    bars: list[tuple[str, float]]
    png: bytes

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) from the PNG's IHDR chunk."""
        return struct.unpack(">II", self.png[16:24])


def report_charts(figures: dict[str, Any], *, start: datetime, end: datetime,
                  per_slot: Sequence[tuple[datetime, int]], first_response_histogram: dict[str, int]) -> list[Chart]:
    """The e-mail's charts, as the admin dashboard draws them: conversations per day (per
    hour for a day), first response times in the histogram's buckets, per operator."""
    _every, step = slots(start, end)
    hourly = step < timedelta(days=1)
    series = [(slot_label(at, step), n) for at, n in per_slot]
    buckets = list(first_response_histogram.items())
    operators = [(o["operator"], o["conversations"]) for o in figures.get("by_operator", [])]
    per = "Conversations per hour" if hourly else "Conversations per day"
    return [
        Chart("per_slot", per, series, charts_png.columns(series, title=per)),
        Chart("first_response", "First response times", buckets,
              charts_png.columns(buckets, title="First response times", every=1)),
        Chart("operators", "Conversations per operator", operators,
              charts_png.horizontal_bars(operators, title="Conversations per operator")),
    ]


def build(*, name: str, period: str, figures: dict[str, Any], previous: dict[str, Any] | None, sender: str,
          recipients: list[str], attachment: bytes, attachment_name: str, charts: Sequence[Chart] = (),
          export_url: str | None = None, export_expires: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{name}: {period}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    rows = lines(figures, previous)
    text = [f"{name} - {period}", ""] + [f"{label}: {now} (before: {old})" for label, now, old in rows]
    text += ["", "By operator:"] + [f"  {o['operator']}: {o['conversations']} conversations, {o['replies']} replies"
                                     for o in figures.get("by_operator", [])]
    text += ["", "Lead sources (conversations, deals, won, revenue, cost):"] + [
        f"  {source}: {n}, {deals}, {won}, {revenue}, {cost}" for source, n, deals, won, revenue, cost in
        lead_lines(figures)]
    text += ["", "Funnel:"] + [f"  {step['stage']}: {step['conversations']}" for step in figures.get("funnel", [])]
    funnels = funnel_lines(figures)
    for title, _first, found in funnels:
        text += ["", f"{title} ({', '.join(STAGE_COLUMNS)}, cost):"] + [
            f"  {row[0]}: {', '.join(row[1:])}" for row in found] + ([] if found else ["  -"])
    for chart in charts:
        if chart.key != "operators":  # written out above, with the replies
            text += ["", f"{chart.title}:"] + [f"  {label}: {charts_png.number(n)}" for label, n in chart.bars]
    if export_url:
        text += ["", f"The export, also online until {export_expires}: {export_url}"]
    message.set_content("\n".join(text))
    # Short Content-IDs: a long one is folded onto a second header line in transit.
    cids = [f"<{chart.key}.{secrets.token_hex(8)}@report.hub>" for chart in charts]
    images = "".join(f"<p><img src='cid:{cid[1:-1]}' alt='{html.escape(chart.title)}' width='{chart.size[0]}' "
                     f"height='{chart.size[1]}'></p>" for chart, cid in zip(charts, cids))  # titled in the image
    link = (f"<p><a href='{html.escape(export_url)}'>The export</a>, online until {html.escape(export_expires or '')}"
            f"</p>" if export_url else "")
    cells = "".join(f"<tr><td>{html.escape(label)}</td><td align='right'><b>{html.escape(now)}</b></td>"
                    f"<td align='right'>{html.escape(old)}</td></tr>" for label, now, old in rows)
    operators = "".join(f"<tr><td>{html.escape(o['operator'])}</td><td align='right'>{o['conversations']}</td>"
                        f"<td align='right'>{o['replies']}</td></tr>" for o in figures.get("by_operator", []))
    leads = "".join(f"<tr><td>{html.escape(source)}</td><td align='right'>{n}</td><td align='right'>{deals}</td>"
                    f"<td align='right'>{won}</td><td align='right'>{html.escape(revenue)}</td>"
                    f"<td align='right'>{html.escape(cost)}</td></tr>"
                    for source, n, deals, won, revenue, cost in lead_lines(figures))
    heads = "".join(f"<th>{stage.capitalize()}</th>" for stage in STAGE_COLUMNS)
    funnel_tables = "".join(
        f"<h3>{title}</h3><table cellpadding='4'><tr><th>{first}</th>{heads}<th>Cost</th></tr>"
        + "".join("<tr><td>" + html.escape(row[0]) + "</td>"
                  + "".join(f"<td align='right'>{html.escape(cell)}</td>" for cell in row[1:]) + "</tr>"
                  for row in found) + "</table>" for title, first, found in funnels)
    message.add_alternative(
        f"<html><body><h2>{html.escape(name)}</h2><p>{html.escape(period)}</p>"
        f"<table cellpadding='4'><tr><th></th><th>This period</th><th>Before</th></tr>{cells}</table>"
        f"<h3>By operator</h3><table cellpadding='4'><tr><th>Operator</th><th>Conversations</th>"
        f"<th>Replies</th></tr>{operators}</table>"
        f"<h3>Lead sources</h3><table cellpadding='4'><tr><th>Source</th><th>Conversations</th><th>Deals</th>"
        f"<th>Won</th><th>Revenue</th><th>Cost</th></tr>{leads}</table>{funnel_tables}{images}{link}</body></html>",
        subtype="html")
    body = message.get_payload()[1]
    for chart, cid in zip(charts, cids):
        body.add_related(chart.png, maintype="image", subtype="png", cid=cid, disposition="inline",
                         filename=f"{chart.key}.png")
    message.add_attachment(attachment, maintype="text", subtype="csv", filename=attachment_name)
    return message


def send(message: EmailMessage, settings: Any) -> None:
    """Send with the [reports] SMTP settings; ReportMailError says what went wrong."""
    if not settings.smtp_host:
        raise ReportMailError("no SMTP server: set [reports] smtp_host to send reports by e-mail")
    if not settings.from_address:
        raise ReportMailError("no sender: set [reports] from_address")
    try:
        if settings.smtp_security == "ssl":
            server = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds,
                                      context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
        with server:
            if settings.smtp_security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                server.login(settings.smtp_username, settings.smtp_password)
            refused = server.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise ReportMailError(f"the SMTP server refused the login: {exc.smtp_code} {_said(exc.smtp_error)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise ReportMailError(f"the SMTP server refused every recipient: {', '.join(exc.recipients)}") from None
    except smtplib.SMTPException as exc:
        raise ReportMailError(f"SMTP: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise ReportMailError(f"cannot reach the SMTP server {settings.smtp_host}:{settings.smtp_port}: {exc}") from None
    if refused:
        raise ReportMailError(f"the SMTP server refused {', '.join(sorted(refused))}")


def _said(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
