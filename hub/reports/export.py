"""The conversation rows of a period as CSV (in chunks, for streaming) or XLSX."""
from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime
from typing import IO, Any, Iterator

from sqlalchemy.orm import Session

from hub.reports.rows import COLUMNS, Filters, rows

CHUNK = 64 * 1024
# Texts that come from customers, campaigns and settings: a spreadsheet opening the CSV
# would run one starting with = + - @ as a formula, so it gets a leading apostrophe.
FREE_TEXT = frozenset({"channel", "contact_name", "operator", "team", "utm_source", "utm_medium", "utm_campaign"})


def csv_cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column in FREE_TEXT and isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_chunks(session: Session, filters: Filters, *, now: datetime) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows(session, filters, now=now):
        writer.writerow([csv_cell(c, row[c]) for c in COLUMNS])
        if out.tell() > CHUNK:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def xlsx_file(session: Session, filters: Filters, *, now: datetime) -> IO[bytes]:
    """A spreadsheet of the rows, written row by row (openpyxl's write-only mode) to a
    temporary file, positioned at its start."""
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

    for row in rows(session, filters, now=now):
        sheet.append([cell(row[c]) for c in COLUMNS])
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    book.save(spool)
    spool.seek(0)
    return spool
