"""The GA4 connector's admin form: the web stream's Measurement Protocol keys and goals."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from connectors import analytics

# GA4 event names: a letter first, then letters, digits and _; 40 at most; reserved
# prefixes and the names GA4 collects itself are refused by the Measurement Protocol.
EVENT_NAME = re.compile(r"^(?!(?:_|firebase_|ga_|google_|gtag\.))[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED = frozenset({"ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure",
                      "app_clear_data", "app_exception", "app_install", "app_remove", "app_store_refund",
                      "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
                      "dynamic_link_first_open", "error", "first_open", "first_visit", "in_app_purchase",
                      "notification_dismiss", "notification_foreground", "notification_open",
                      "notification_receive", "os_update", "session_start", "session_start_with_rollout",
                      "user_engagement"})
DEFAULT_GOALS = ["first_message -> generate_lead", "won -> close_convert_lead = amount",
                 "lost -> close_unconvert_lead = 0"]


class Ga4Settings(Schema):
    measurement_id = fields.String(
        required=True, validate=validate.Regexp(r"^G-[A-Z0-9]{4,20}$", error="a GA4 measurement ID looks like G-XXXXXXXXXX"),
        metadata={"label": "Measurement ID", "placeholder": "G-XXXXXXXXXX",
                  "help": "Admin > Data streams > your web stream > Measurement ID (not the stream ID)."},
    )
    api_secret = fields.String(
        required=True, validate=validate.Length(min=8, max=200),
        metadata={"label": "Measurement Protocol API secret", "secret": True,
                  "help": "Admin > Data streams > your web stream > Measurement Protocol API secrets > Create."},
    )
    endpoint = fields.Url(
        load_default="https://www.google-analytics.com", require_tld=False, schemes={"http", "https"},
        metadata={"label": "Collection endpoint", "help": "www.google-analytics.com, or region1.google-analytics.com "
                                                          "to collect in the EU."},
    )
    goals = fields.List(
        fields.String(), load_default=lambda: list(DEFAULT_GOALS),
        metadata={"label": "Goals (stage -> GA4 event)", "multiline": True,
                  "help": "One a line: TRIGGER -> EVENT [= amount | a fixed value]; TRIGGER is first_message, "
                          "won, lost or stage:STAGE_ID (the CRM's stage id), e.g. 'won -> purchase = amount'. "
                          "GA4 recommends generate_lead, close_convert_lead, close_unconvert_lead and purchase."},
    )
    currency = analytics.currency_field("USD")
    send_lead_source = fields.Boolean(
        load_default=True,
        metadata={"label": "Send the lead source (UTM tags)",
                  "help": "campaign, source, medium, term and content of the conversation's visit as event parameters."},
    )
    send_user_id = fields.Boolean(
        load_default=False,
        metadata={"label": "Send the hub contact id as user_id",
                  "help": "An opaque number, never the phone: GA4 forbids personal data."},
    )
    skip_opted_out = fields.Boolean(
        load_default=True,
        metadata={"label": "Nothing for contacts who opted out",
                  "help": "GA4 conversions feed Google Ads: skip contacts who opted out of marketing."},
    )
    timeout_seconds = analytics.timeout_field()

    @validates("goals")
    def _goals(self, value: list[str], **_: Any) -> None:
        goals = analytics.settings_goals(value, name_pattern=EVENT_NAME,
                                         name_rule="is not a GA4 event name (a letter, then letters, digits "
                                                   "or _, 40 at most, no reserved prefix)")
        reserved = sorted({g.name for g in goals} & RESERVED)
        if reserved:
            raise ValidationError(f"{', '.join(reserved)} is reserved by GA4 and cannot be sent")
