"""The Bitrix24 connector's settings form (marshmallow; metadata drives the admin form)."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from connectors.bitrix24 import rules
from connectors.person import new_channel_opens_deal_field
from hub.shared.text_templates import placeholder_problem

WEBHOOK_PATH = re.compile(r"^/rest/\d+/[A-Za-z0-9]+/?$")
OPENLINES_CONNECTOR = re.compile(r"^[a-z0-9_]{1,50}$")
STAGE_ID = re.compile(r"^[A-Za-z0-9_]+(?::[A-Za-z0-9_]+)?$")
TITLE_FIELDS = ("contact_name", "phone", "conversation_id", "channel_name", "source", "campaign")


def _url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Bitrix24Settings(Schema):
    portal_url = fields.String(
        required=True,
        metadata={"label": "Portal URL", "placeholder": "https://yourcompany.bitrix24.com",
                  "help": "The address of your Bitrix24 account."},
    )
    auth_mode = fields.String(
        load_default="webhook",
        validate=validate.OneOf(["webhook", "oauth"]),
        metadata={"label": "Authorisation", "choices": [("webhook", "Incoming webhook"), ("oauth", "OAuth app")],
                  "help": "An incoming webhook (Developer resources > Other > Inbound webhook, scopes crm and "
                          "user) or a local/market app with refreshable OAuth tokens."},
    )
    webhook_url = fields.String(
        load_default="",
        metadata={"label": "Incoming webhook URL", "secret": True,
                  "placeholder": "https://yourcompany.bitrix24.com/rest/1/abc123def456/",
                  "help": "Bitrix24 shows it once when the webhook is created; it contains the secret code."},
    )
    client_id = fields.String(load_default="", metadata={"label": "OAuth client_id", "placeholder": "local.5f1e..."})
    client_secret = fields.String(load_default="", metadata={"label": "OAuth client_secret", "secret": True})
    authorization_code = fields.String(
        load_default="",
        metadata={"label": "OAuth authorization code", "secret": True,
                  "help": "Connect with Bitrix24 (on the connector's page) fills it in and the hub exchanges "
                          "it at once for the tokens below: Bitrix24's codes are valid 30 seconds."},
    )
    access_token = fields.String(load_default="", metadata={"label": "OAuth access token", "secret": True})
    refresh_token = fields.String(
        load_default="",
        metadata={"label": "OAuth refresh token", "secret": True,
                  "help": "Stored by Connect with Bitrix24 (or pasted from the app's install event); renewed "
                          "automatically when the access token expires (valid 180 days)."},
    )
    oauth_server_url = fields.String(
        load_default="https://oauth.bitrix.info",
        metadata={"label": "OAuth server", "help": "Where refresh tokens are exchanged."},
    )
    application_token = fields.String(
        load_default="",
        metadata={"label": "Application token", "secret": True,
                  "help": "Bitrix24 sends it as auth[application_token] with every event; events without it "
                          "are refused. Outbound webhook: the 'Application token' field; app: the token of "
                          "ONAPPINSTALL."},
    )
    target = fields.String(
        load_default="deal", validate=validate.OneOf(["deal", "lead"]),
        metadata={"label": "Create", "choices": [("deal", "Deals"), ("lead", "Leads")],
                  "help": "What each WhatsApp conversation becomes in the CRM."},
    )
    deal_category_id = fields.Integer(
        load_default=0, validate=validate.Range(min=0),
        metadata={"label": "Deal pipeline", "help": "0 is the general pipeline."},
    )
    deal_stage_id = fields.String(
        load_default="",
        metadata={"label": "Deal stage", "placeholder": "NEW or C1:NEW",
                  "help": "Stage of new deals; empty = the pipeline's first stage."},
    )
    lead_status_id = fields.String(load_default="NEW", metadata={"label": "Lead status"})
    source_id = fields.String(
        load_default="",
        metadata={"label": "Source", "placeholder": "WEB",
                  "help": "SOURCE_ID of new deals/leads (crm.status.list, ENTITY_ID=SOURCE); empty = portal default."},
    )
    title_template = fields.String(
        load_default="WhatsApp: {contact_name}",
        metadata={"label": "Title", "help": "Placeholders: " + ", ".join("{%s}" % f for f in TITLE_FIELDS)},
    )
    reuse = fields.String(
        load_default="open",
        validate=validate.OneOf(["open", "never"]),
        metadata={"label": "Reuse", "choices": [("open", "Reuse the contact's open deal/lead in this pipeline"),
                                                ("never", "A new deal/lead for every conversation")]},
    )
    new_channel_opens_deal = new_channel_opens_deal_field()
    timeline = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "inbound", "outbound", "none"]),
        metadata={"label": "Messages on the timeline",
                  "choices": [("all", "All messages"), ("inbound", "Customer messages only"),
                              ("outbound", "Business messages only"), ("none", "None")]},
    )
    utm_mapping = fields.String(
        load_default=rules.DEFAULT_UTM_MAPPING,
        metadata={"label": "Lead source mapping", "multiline": True,
                  "help": "One FIELD=source a line: UTM_SOURCE..UTM_TERM, SOURCE_DESCRIPTION or UF_CRM_* "
                          "= utm_source, gclid, campaign, referral.ctwa_clid, ..."},
    )
    operator_map = fields.String(
        load_default="",
        metadata={"label": "Operators", "multiline": True, "placeholder": "olga@example.com=5",
                  "help": "One hub e-mail=Bitrix24 user ID a line; sets ASSIGNED_BY_ID."},
    )
    default_assigned_by_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1),
        metadata={"label": "Default responsible user", "help": "ASSIGNED_BY_ID when no operator is mapped."},
    )
    close_stage_id = fields.String(
        load_default="",
        metadata={"label": "Stage on close", "placeholder": "WON or C1:LOSE",
                  "help": "Move the deal (or lead status) here when the conversation is closed; empty = leave it."},
    )
    stage_rules = fields.String(
        load_default="",
        metadata={"label": "Stage rules", "multiline": True, "placeholder": "C1:WON -> order_shipped:en | contact.NAME, deal.TITLE",
                  "help": "When a deal/lead enters a stage, send a WhatsApp template. One rule a line."},
    )
    report_deal_stages = fields.Boolean(
        load_default=False,
        metadata={"label": "Report deal stages to analytics",
                  "help": "Every stage change of a deal of a WhatsApp conversation (won S, lost F or another "
                          "stage, with OPPORTUNITY and CURRENCY_ID) becomes a deal.stage_changed event for the "
                          "analytics connectors (needs the ONCRMDEALUPDATE event)."},
    )
    mode = fields.String(
        load_default="timeline", validate=validate.OneOf(["timeline", "openlines", "both"]),
        metadata={"label": "Mode (timeline / Open Lines)", "choices": [("timeline", "Timeline comments"),
                                               ("openlines", "Chat in Open Lines"),
                                               ("both", "Timeline comments and chat in Open Lines")],
                  "help": "Open Lines puts each WhatsApp conversation in a real chat that operators answer "
                          "inside Bitrix24; it needs the OAuth app connection (Bitrix24 refuses its methods "
                          "through an incoming webhook)."},
    )
    openlines_connector_id = fields.String(
        load_default="whatsapp_hub",
        metadata={"label": "Open Lines connector ID", "placeholder": "whatsapp_hub",
                  "help": "The ID the hub registers its connector under (lowercase letters, digits and _)."},
    )
    openlines_line_id = fields.String(
        load_default="",
        metadata={"label": "Open line", "help": "The open line the WhatsApp chats arrive on (Test connection "
                                                "activates the connector there)."},
    )
    rate_per_second = fields.Float(
        load_default=2.0, validate=validate.Range(min=0.1, max=100),
        metadata={"label": "Requests per second", "help": "2 on most plans, 5 on Enterprise."},
    )
    burst = fields.Integer(
        load_default=50, validate=validate.Range(min=1, max=10000),
        metadata={"label": "Burst", "help": "50 on most plans, 250 on Enterprise."},
    )

    @validates("portal_url")
    def _portal(self, value: str, **_: Any) -> None:
        if not _url(value):
            raise ValidationError("must be the portal's address, e.g. https://yourcompany.bitrix24.com")

    @validates("oauth_server_url")
    def _oauth_server(self, value: str, **_: Any) -> None:
        if not _url(value):
            raise ValidationError("must be a URL such as https://oauth.bitrix.info")

    @validates("title_template")
    def _title(self, value: str, **_: Any) -> None:
        problem = placeholder_problem(value, TITLE_FIELDS)
        if problem:
            raise ValidationError(problem)

    @validates("deal_stage_id", "close_stage_id", "lead_status_id")
    def _stage(self, value: str, **_: Any) -> None:
        if value and not STAGE_ID.match(value):
            raise ValidationError("a stage/status ID looks like NEW or C1:NEW")

    @validates("stage_rules")
    def _rules(self, value: str, **_: Any) -> None:
        try:
            rules.parse_rules(value)
        except rules.RuleError as exc:
            raise ValidationError(str(exc)) from None

    @validates("utm_mapping")
    def _utm(self, value: str, **_: Any) -> None:
        try:
            rules.parse_field_mapping(value)
        except rules.RuleError as exc:
            raise ValidationError(str(exc)) from None

    @validates("operator_map")
    def _operators(self, value: str, **_: Any) -> None:
        try:
            rules.parse_operator_map(value)
        except rules.RuleError as exc:
            raise ValidationError(str(exc)) from None

    @validates_schema
    def _auth(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("auth_mode", "webhook") == "webhook":
            hook = data.get("webhook_url") or ""
            if not hook:
                raise ValidationError("required for webhook authorisation", "webhook_url")
            parts = urlsplit(hook)
            if not _url(hook) or not WEBHOOK_PATH.match(parts.path):
                raise ValidationError("must look like https://<portal>/rest/<user id>/<code>/", "webhook_url")
            portal = urlsplit(data.get("portal_url") or "")
            if portal.netloc and parts.netloc != portal.netloc:
                raise ValidationError("the webhook belongs to another portal than the portal URL", "webhook_url")
        else:
            # Without tokens the connector is saved "not connected yet": Connect with Bitrix24
            # on its page gets them.
            missing = [k for k in ("client_id", "client_secret") if not data.get(k)]
            if missing:
                raise ValidationError({k: ["required for OAuth authorisation"] for k in missing})
        if data.get("mode", "timeline") != "timeline":
            if data.get("auth_mode", "webhook") != "oauth":
                raise ValidationError("Open Lines work only through the OAuth app connection: Bitrix24 refuses "
                                      "imconnector methods called through an incoming webhook. Choose "
                                      "Authorisation: OAuth app", "mode")
            if not OPENLINES_CONNECTOR.match(data.get("openlines_connector_id") or ""):
                raise ValidationError("lowercase letters, digits and _ only (no dots), e.g. whatsapp_hub",
                                      "openlines_connector_id")
            if not str(data.get("openlines_line_id") or "").isdigit():
                raise ValidationError("choose the open line (its ID, a number)", "openlines_line_id")
        stage = data.get("deal_stage_id") or ""
        category = data.get("deal_category_id") or 0
        if stage and category and not stage.startswith(f"C{category}:"):
            raise ValidationError(f"stages of pipeline {category} look like C{category}:NEW", "deal_stage_id")
