"""A CSV of recipients: a phone column plus any columns, which become template variables.

Pure: bytes in, accepted rows and a per-row refusal report out. UTF-8 (with or without
a BOM) or Windows-1251, as Excel saves it in Russia; `;` or `,` between fields, told
from the header line. Numbers go to E.164 (hub.shared.phones); national forms are read in
`region` when one is given.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from hub.shared.phones import to_e164

PHONE_HEADERS = ("phone", "phone_number", "telephone", "tel", "mobile", "number", "msisdn", "wa_id",
                 "телефон", "номер", "номер телефона", "мобильный")
MAX_BYTES = 20 * 1024 * 1024


class CsvProblem(ValueError):
    """The file as a whole cannot be used (no phone column, not text, empty)."""

    def __init__(self, message: str, *, field: str = "file"):
        super().__init__(message)
        self.field = field


@dataclass
class ParsedCsv:
    columns: list[str]
    phone_column: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # {"row", "phone", "variables"}
    refused: list[dict[str, Any]] = field(default_factory=list)  # {"row", "phone", "reason", "detail"}
    encoding: str = "utf-8"
    delimiter: str = ","


def decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1251"), "windows-1251"  # every byte is something in 1251


def _delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


def parse_csv(data: bytes, *, region: str | None = None) -> ParsedCsv:
    if len(data) > MAX_BYTES:
        raise CsvProblem(f"the file is {len(data)} bytes; at most {MAX_BYTES} are read")
    text, encoding = decode(data)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CsvProblem("the file is empty: the first line must name the columns, one of them the phone")
    delimiter = _delimiter(lines[0])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    lowered = [h.casefold() for h in header]
    phone_at = next((i for i, h in enumerate(lowered) if h in PHONE_HEADERS), None)
    if phone_at is None:
        raise CsvProblem(f"no phone column: name one of the columns 'phone' (or телефон); the columns are "
                         f"{', '.join(repr(h) for h in header)}", field="phone")
    parsed = ParsedCsv(columns=[h for i, h in enumerate(header) if i != phone_at and h],
                       phone_column=header[phone_at], encoding=encoding, delimiter=delimiter)
    seen: dict[str, int] = {}
    for number, cells in enumerate(reader, start=2):  # row 1 is the header, as a spreadsheet counts
        if not any(c.strip() for c in cells):
            continue
        raw = cells[phone_at].strip() if phone_at < len(cells) else ""
        phone = to_e164(raw, region)
        if phone is None:
            parsed.refused.append({"row": number, "phone": raw, "reason": "bad_number",
                                   "detail": "not a phone number" if raw else "the phone cell is empty"})
            continue
        if phone in seen:
            parsed.refused.append({"row": number, "phone": raw, "reason": "duplicate",
                                   "detail": f"the same number as row {seen[phone]}"})
            continue
        seen[phone] = number
        variables = {header[i]: cells[i].strip() for i in range(min(len(cells), len(header)))
                     if i != phone_at and header[i]}
        parsed.rows.append({"row": number, "phone": phone, "variables": variables})
    return parsed
