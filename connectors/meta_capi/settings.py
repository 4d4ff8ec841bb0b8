"""The Meta Conversions API (business messaging) connector's admin form."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, fields, validate, validates

from connectors import analytics

# The event names Meta accepts with action_source=business_messaging; any other
# standard or custom name is refused (error_subcode 2804066).
EVENT_NAMES = ("LeadSubmitted", "Purchase", "AddToCart", "InitiateCheckout", "ViewContent")
EVENT_NAME = re.compile(r"^(" + "|".join(EVENT_NAMES) + r")$")
DEFAULT_GOALS = ["first_message -> LeadSubmitted", "won -> Purchase = amount"]


class MetaCapiSettings(Schema):
    dataset_id = fields.String(
        required=True, validate=validate.Regexp(r"^\d{5,20}$", error="a dataset ID is digits"),
        metadata={"label": "Dataset ID", "help": "Events Manager > Data sources > the dataset linked to the WhatsApp "
                                                 "Business Account."},
    )
    access_token = fields.String(
        required=True, validate=validate.Length(min=10, max=1000),
        metadata={"label": "Access token", "secret": True,
                  "help": "A system user token with page_events / whatsapp_business_management and ads_management."},
    )
    whatsapp_business_account_id = fields.String(
        required=True, validate=validate.Regexp(r"^\d{5,20}$", error="a WhatsApp Business Account ID is digits"),
        metadata={"label": "WhatsApp Business Account ID", "help": "Sent as user_data.whatsapp_business_account_id."},
    )
    graph_url = fields.Url(
        load_default="https://graph.facebook.com", require_tld=False, schemes={"http", "https"},
        metadata={"label": "Graph API address"},
    )
    api_version = fields.String(
        load_default="v21.0", validate=validate.Regexp(r"^v\d{1,2}\.\d$", error="a Graph API version such as v21.0"),
        metadata={"label": "Graph API version"},
    )
    goals = fields.List(
        fields.String(), load_default=lambda: list(DEFAULT_GOALS),
        metadata={"label": "Goals (stage -> Meta event)", "multiline": True,
                  "help": "One a line: TRIGGER -> EVENT [= amount | a fixed value]; TRIGGER is first_message, won, "
                          "lost or stage:STAGE_ID. Events: LeadSubmitted, Purchase, AddToCart, InitiateCheckout, "
                          "ViewContent."},
    )
    currency = analytics.currency_field("USD")
    send_phone = fields.Boolean(
        load_default=True,
        metadata={"label": "Send the phone (SHA-256)",
                  "help": "user_data.ph: the digits of the phone with country code, hashed before it leaves the hub."},
    )
    send_external_id = fields.Boolean(
        load_default=False,
        metadata={"label": "Send the hub contact id (SHA-256)", "help": "user_data.external_id, hashed."},
    )
    skip_opted_out = fields.Boolean(
        load_default=True,
        metadata={"label": "Nothing for contacts who opted out",
                  "help": "Meta conversions optimise ads: skip contacts who opted out of marketing."},
    )
    partner_agent = fields.String(
        load_default="", validate=validate.Length(max=100),
        metadata={"label": "Partner agent", "help": "Optional: the partner_agent string Meta gave your integration."},
    )
    test_event_code = fields.String(
        load_default="", validate=validate.Length(max=40),
        metadata={"label": "Test event code", "help": "From Events Manager > Test events; empty in production."},
    )
    timeout_seconds = analytics.timeout_field()

    @validates("goals")
    def _goals(self, value: list[str], **_: Any) -> None:
        analytics.settings_goals(value, name_pattern=EVENT_NAME,
                                 name_rule="is not an event Meta accepts for business messaging; use "
                                           + ", ".join(EVENT_NAMES))
