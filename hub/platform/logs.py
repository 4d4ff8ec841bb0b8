"""Log lines without customer data: bodies belong at debug level only.

Database errors carry what customers wrote: SQLAlchemy appends the statement's
parameters (hidden by the engine outside debug, see hub.platform.db), and PostgreSQL adds DETAIL
lines quoting the failing row or key ("Key (wa_id)=(15557654321) already exists").
RedactingFilter, on every handler the hub sets up, rewrites each record's message and
traceback once, whatever formatter the handler uses.
"""
from __future__ import annotations

import logging
import re

_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_DETAIL = re.compile(r"(DETAIL:|CONTEXT:)[^\n]*")
_FAILING_ROW = re.compile(r"Failing row contains \([^\n]*")
_KEY_VALUE = re.compile(r"(Key \([^)\n]*\))=\([^\n]*\)")
_PHONE = re.compile(r"(?<![\w.])\+?\d{10,15}(?![\w.])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BOT_TOKEN = re.compile(r"(?<!\d)\d{3,20}:[A-Za-z0-9_-]{30,}")  # Telegram's, as in /bot<token>/ URLs


def redact(text: str) -> str:
    """The text with statement parameters, row details, Telegram bot tokens, phone
    numbers and e-mail addresses replaced by placeholders."""
    text = _PARAMETERS.sub("[parameters: redacted]", text)
    text = _DETAIL.sub(r"\1 redacted", text)
    text = _FAILING_ROW.sub("Failing row contains (redacted)", text)
    text = _KEY_VALUE.sub(r"\1=(redacted)", text)
    text = _BOT_TOKEN.sub("<bot token>", text)
    text = _PHONE.sub("<phone>", text)
    return _EMAIL.sub("<e-mail>", text)


class RedactingFilter(logging.Filter):
    """Rewrites the record in place (message, then traceback) and always passes it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._redacted = True
        return True


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on each handler of `logger` (the root) that lacks one."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
