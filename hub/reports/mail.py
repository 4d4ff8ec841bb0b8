"""A report as an e-mail (HTML and plain text, the export attached) and sending it over
SMTP as [reports] says. Refusals become ReportMailError with what the server said."""
from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any


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
    ]


def build(*, name: str, period: str, figures: dict[str, Any], previous: dict[str, Any] | None, sender: str,
          recipients: list[str], attachment: bytes, attachment_name: str) -> EmailMessage:
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
    message.set_content("\n".join(text))
    cells = "".join(f"<tr><td>{html.escape(label)}</td><td align='right'><b>{html.escape(now)}</b></td>"
                    f"<td align='right'>{html.escape(old)}</td></tr>" for label, now, old in rows)
    operators = "".join(f"<tr><td>{html.escape(o['operator'])}</td><td align='right'>{o['conversations']}</td>"
                        f"<td align='right'>{o['replies']}</td></tr>" for o in figures.get("by_operator", []))
    message.add_alternative(
        f"<html><body><h2>{html.escape(name)}</h2><p>{html.escape(period)}</p>"
        f"<table cellpadding='4'><tr><th></th><th>This period</th><th>Before</th></tr>{cells}</table>"
        f"<h3>By operator</h3><table cellpadding='4'><tr><th>Operator</th><th>Conversations</th>"
        f"<th>Replies</th></tr>{operators}</table></body></html>", subtype="html")
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
