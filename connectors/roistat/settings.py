"""The Roistat connector's admin form: the project, the API key, stages -> statuses."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from connectors import analytics

STATUS_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEFAULT_GOALS = ["first_message -> new", "won -> paid = amount", "lost -> canceled"]
DEFAULT_STATUSES = ["new = В работе: новая заявка из WhatsApp | progress", "paid = Оплачен | paid",
                    "canceled = Отменён | canceled"]
_STATUS_LINE = re.compile(r"^(?P<id>[A-Za-z0-9_.:-]{1,64})\s*=\s*(?P<name>[^|]{1,100}?)\s*\|\s*(?P<type>progress|paid|canceled)$")


def parse_statuses(lines: list[str]) -> list[dict[str, str]]:
    """Status lines "paid = Оплачен | paid" -> [{"id", "name", "type"}] (set-statuses)."""
    out = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        m = _STATUS_LINE.match(line)
        if not m:
            raise ValueError(f"line {number}: {line!r} must look like 'paid = Оплачен | paid' "
                             "(ID = name | progress, paid or canceled)")
        out.append({"id": m.group("id"), "name": m.group("name"), "type": m.group("type")})
    return out


class RoistatSettings(Schema):
    project = fields.String(
        required=True, validate=validate.Regexp(r"^\d{1,12}$", error="the project number is digits"),
        metadata={"label": "Project number", "help": "The number in cloud.roistat.com/projects/<number>."},
    )
    api_key = fields.String(
        required=True, validate=validate.Length(min=10, max=200),
        metadata={"label": "API key", "secret": True, "help": "Profile settings > API key; sent in the Api-key header."},
    )
    api_url = fields.Url(
        load_default="https://cloud.roistat.com/api/v1", require_tld=False, schemes={"http", "https"},
        metadata={"label": "API address"},
    )
    goals = fields.List(
        fields.String(), load_default=lambda: list(DEFAULT_GOALS),
        metadata={"label": "Goals (stage -> Roistat status)", "multiline": True,
                  "help": "One a line: TRIGGER -> STATUS_ID [= amount | a fixed value]; TRIGGER is first_message, "
                          "won, lost or stage:STAGE_ID. The deal becomes one Roistat order whose status and price "
                          "follow these lines."},
    )
    statuses = fields.List(
        fields.String(), load_default=lambda: list(DEFAULT_STATUSES),
        metadata={"label": "Roistat statuses", "multiline": True,
                  "help": "One a line: ID = name | progress, paid or canceled; Test connection sends them "
                          "(set-statuses) so Roistat knows which orders are paid."},
    )
    send_phone = fields.Boolean(
        load_default=True,
        metadata={"label": "Send the phone", "help": "Roistat matches orders to calls and clients by phone: sent as "
                                                     "digits (Roistat takes no hashes)."},
    )
    skip_opted_out = fields.Boolean(
        load_default=False,
        metadata={"label": "Nothing for contacts who opted out",
                  "help": "Roistat is the business's own analytics; switch on if it feeds ad platforms."},
    )
    timeout_seconds = analytics.timeout_field()

    @validates("goals")
    def _goals(self, value: list[str], **_: Any) -> None:
        analytics.settings_goals(value, name_pattern=STATUS_ID, name_rule="is not a Roistat status ID")

    @validates("statuses")
    def _statuses(self, value: list[str], **_: Any) -> None:
        try:
            parse_statuses(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
