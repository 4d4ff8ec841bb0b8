"""The Yandex Metrica connector's admin form: the counter, the OAuth token, the goals."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, fields, validate, validates

from connectors import analytics

# Metrica goal identifiers of "JavaScript event" goals.
GOAL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
DEFAULT_GOALS = ["first_message -> whatsapp_chat", "won -> deal_won = amount"]


class MetricaSettings(Schema):
    counter_id = fields.Integer(
        required=True, validate=validate.Range(min=1),
        metadata={"label": "Counter ID", "help": "The number of the Metrica tag on the site the tracked links lead from."},
    )
    oauth_token = fields.String(
        required=True, validate=validate.Length(min=10, max=500),
        metadata={"label": "OAuth token", "secret": True,
                  "help": "A Yandex OAuth token with the metrika:write scope; sent as Authorization: OAuth <token>."},
    )
    api_url = fields.Url(
        load_default="https://api-metrika.yandex.net", require_tld=False, schemes={"http", "https"},
        metadata={"label": "API address"},
    )
    goals = fields.List(
        fields.String(), load_default=lambda: list(DEFAULT_GOALS),
        metadata={"label": "Goals (stage -> Metrica goal)", "multiline": True,
                  "help": "One a line: TRIGGER -> GOAL_ID [= amount | a fixed value]; TRIGGER is first_message, won, "
                          "lost or stage:STAGE_ID. GOAL_ID is the identifier of a JavaScript event goal of the counter."},
    )
    currency = analytics.currency_field("RUB")
    chats_upload = fields.Boolean(
        load_default=True,
        metadata={"label": "First messages as chats (CHATS)",
                  "help": "Upload first_message goals with type=CHATS, so Metrica counts the WhatsApp chat as a contact."},
    )
    skip_opted_out = fields.Boolean(
        load_default=False,
        metadata={"label": "Nothing for contacts who opted out",
                  "help": "Metrica is web analytics; switch on when its goals feed Yandex Direct's optimisation."},
    )
    timeout_seconds = analytics.timeout_field(20.0, most=120)

    @validates("goals")
    def _goals(self, value: list[str], **_: Any) -> None:
        analytics.settings_goals(value, name_pattern=GOAL_ID,
                                 name_rule="is not a Metrica goal identifier (Latin letters, digits, _ . : -)")
