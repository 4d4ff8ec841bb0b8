"""The HubSpot connector's Settings form (marshmallow; field metadata drives the admin form)."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from connectors.hubspot import rules
from connectors.person import new_channel_opens_deal_field
from hub.shared.text_templates import placeholder_problem

DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"

# Placeholders the deal name template may use (see mapping.render_deal_name).
DEAL_NAME_FIELDS = ("contact_name", "phone", "wa_id", "conversation_id", "channel", "date")

# Keys of a lead source (docs/events.md) that can be mapped to HubSpot properties.
SOURCE_KEYS = (
    "kind", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
    "gclid", "yclid", "fbclid", "campaign", "link", "code", "landing_page", "referrer",
    "referral.source_url", "referral.source_id", "referral.source_type", "referral.headline",
    "referral.body", "referral.media_type", "referral.ctwa_clid",
)

DEFAULT_SOURCE_PROPERTIES = {
    "kind": "hub_lead_source",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_content": "utm_content",
    "utm_term": "utm_term",
    "gclid": "gclid",
    "fbclid": "fbclid",
    "referral.ctwa_clid": "hub_ctwa_clid",
    "referral.source_url": "hub_ad_source_url",
}

AUTH_PRIVATE_APP = "private_app"
AUTH_OAUTH = "oauth"
AUTH_MODES = (AUTH_PRIVATE_APP, AUTH_OAUTH)

LOG_MODES = ("all", "inbound", "outbound", "none")
REUSE_MODES = ("per_conversation", "open_deal")
RATE_LIMITS = (100, 150, 190, 200, 250)

# HubSpot internal property names: lowercase letters, digits and underscores, starting
# with a letter (the properties API refuses others).
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
# HubSpot accepts https redirect URIs, and http only for localhost (development).
REDIRECT_URI = re.compile(r"^(https://[^\s/?#]+|http://(localhost|127\.0\.0\.1)(:\d+)?)(/\S*)?$")


def _check_property_name(value: str) -> None:
    if not PROPERTY_NAME.match(value or ""):
        raise ValidationError(
            f"{value!r} is not a HubSpot internal property name (lowercase letters, digits, underscores)"
        )


class HubSpotSettings(Schema):
    # -- credentials: a private app token, or an OAuth app (see oauth.py) -------------------
    auth_mode = fields.String(
        load_default=AUTH_PRIVATE_APP,
        validate=validate.OneOf(AUTH_MODES),
        metadata={"label": "Authentication",
                  "help": "private_app: paste a private app access token. oauth: a public app installed "
                          "in the account: save, then press Connect with HubSpot on the connector's page "
                          "(or paste the authorization code HubSpot sends to the redirect URI).",
                  "choices": list(AUTH_MODES)},
    )
    access_token = fields.String(
        load_default="",
        metadata={
            "label": "Private app access token",
            "help": "Settings > Integrations > Private apps in HubSpot. Scopes: crm.objects.contacts "
                    "read/write, crm.objects.deals read/write, crm.schemas.contacts/deals write "
                    "(only to create missing properties), crm.objects.owners.read.",
            "secret": True,
            "placeholder": "pat-na1-...",
        },
    )
    client_id = fields.String(
        load_default="",
        metadata={"label": "App client ID (OAuth)",
                  "help": "From the app's Auth settings in HubSpot.",
                  "placeholder": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
    )
    client_secret = fields.String(
        load_default="",
        metadata={
            "label": "App client secret (OAuth and webhooks)",
            "help": "From the app's Auth settings. OAuth exchanges use it, and it verifies HubSpot's "
                    "X-HubSpot-Signature-v3 on webhooks sent to this connector's URL (empty: every "
                    "webhook is refused).",
            "secret": True,
        },
    )
    redirect_uri = fields.String(
        load_default="",
        metadata={"label": "Redirect URI (OAuth)",
                  "help": "Exactly as in the app's Auth settings. The Connect with HubSpot button sets it to "
                          "the hub's own callback, shown on the connector's page: register that one in the app.",
                  "placeholder": "https://hub.example.com/admin/connectors/oauth/callback"},
    )
    authorize_url = fields.Url(
        load_default=DEFAULT_AUTHORIZE_URL,
        require_tld=False,
        schemes={"http", "https"},
        metadata={"label": "Install page (OAuth)",
                  "help": "Where Connect with HubSpot sends your browser; https://app.hubspot.com/oauth/authorize "
                          "unless you test against an emulator."},
    )
    authorization_code = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Authorization code (OAuth)",
                  "help": "Connect with HubSpot fills it in. Without the button: after installing the "
                          "app, HubSpot redirects to the redirect URI with ?code=...: paste that code (it "
                          "is short-lived). The hub exchanges it once and forgets it.",
                  "secret": True},
    )
    oauth_access_token = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "OAuth access token (managed)", "secret": True, "managed": True,
                  "help": "Renewed by the hub every 30 minutes."},
    )
    oauth_refresh_token = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "OAuth refresh token (managed)", "secret": True, "managed": True,
                  "help": "Stored by the hub when the authorization code is exchanged."},
    )
    oauth_expires_at = fields.Integer(
        load_default=None, allow_none=True,
        metadata={"label": "OAuth access token expiry (managed)", "managed": True,
                  "help": "Unix time; kept up to date by the hub."},
    )
    webhook_url = fields.String(
        load_default="",
        metadata={
            "label": "Webhook target URL as configured in HubSpot",
            "help": "Only needed when a proxy changes the URL the hub sees: the v3 signature covers "
                    "the exact URL HubSpot called.",
            "placeholder": "https://hub.example.com/webhooks/connectors/...",
        },
    )
    base_url = fields.Url(
        load_default=DEFAULT_BASE_URL,
        require_tld=False,
        schemes={"http", "https"},
        metadata={"label": "API base URL", "help": "https://api.hubapi.com unless you test against an emulator."},
    )
    portal_id = fields.String(
        load_default="",
        validate=validate.Regexp(r"^\d*$", error="The account ID is a number (Settings > Account details)."),
        metadata={"label": "HubSpot account ID",
                  "help": "With it the hub's inbox links each conversation to its HubSpot records. Test "
                          "connection fills it in; HubSpot shows it under Settings > Account details."},
    )
    rate_limit_per_10s = fields.Integer(
        load_default=100,
        validate=validate.OneOf(RATE_LIMITS),
        metadata={
            "label": "Requests per 10 seconds",
            "help": "Your account's burst limit: 100 (Free/Starter), 190 (Professional/Enterprise), "
                    "250 with the API limit increase. Shared by every worker of this connector.",
            "choices": list(RATE_LIMITS),
        },
    )
    search_rate_per_second = fields.Integer(
        load_default=5,
        validate=validate.Range(min=1, max=5),
        metadata={"label": "Search requests per second",
                  "help": "The CRM search API has its own, lower limit (5 per second per account)."},
    )
    pipeline_id = fields.String(
        load_default="default",
        metadata={"label": "Deal pipeline", "help": "New deals go to this pipeline.", "choices_from": "pipelines"},
    )
    stage_id = fields.String(
        load_default="appointmentscheduled",
        metadata={"label": "Stage of new deals", "choices_from": "stages"},
    )
    closed_stage_id = fields.String(
        load_default="",
        metadata={"label": "Stage when the conversation is closed",
                  "help": "Empty: closing a conversation leaves the deal where it is.",
                  "choices_from": "stages"},
    )
    deal_name_template = fields.String(
        load_default="WhatsApp: {contact_name}",
        validate=validate.Length(min=1, max=200),
        metadata={"label": "Deal name",
                  "help": "Placeholders: " + ", ".join("{" + f + "}" for f in DEAL_NAME_FIELDS)},
    )
    deal_reuse = fields.String(
        load_default="per_conversation",
        validate=validate.OneOf(REUSE_MODES),
        metadata={"label": "Deals",
                  "help": "per_conversation: a new deal for every conversation; open_deal: reuse the "
                          "contact's open deal in the pipeline when there is one.",
                  "choices": list(REUSE_MODES)},
    )
    new_channel_opens_deal = new_channel_opens_deal_field()
    log_messages = fields.String(
        load_default="all",
        validate=validate.OneOf(LOG_MODES),
        metadata={"label": "Messages on the timeline", "choices": list(LOG_MODES),
                  "help": "Which messages become WhatsApp communications on the contact and deal."},
    )
    owner_map = fields.Dict(
        keys=fields.Email(), values=fields.String(validate=validate.Regexp(r"^\d+$")),
        load_default=dict,
        metadata={"label": "Operators to HubSpot owners",
                  "help": "Operator e-mail -> HubSpot owner id (from /crm/v3/owners).",
                  "choices_from": "owners"},
    )
    match_owners_by_email = fields.Boolean(
        load_default=True,
        metadata={"label": "Match operators to owners by e-mail",
                  "help": "When an operator is not in the map, use the HubSpot owner with the same e-mail."},
    )
    default_owner_id = fields.String(
        load_default="",
        validate=validate.Regexp(r"^(\d+)?$"),
        metadata={"label": "Owner of unassigned deals", "choices_from": "owners"},
    )
    source_properties = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SOURCE_KEYS)),
        values=fields.String(),
        load_default=lambda: dict(DEFAULT_SOURCE_PROPERTIES),
        metadata={"label": "Lead source -> deal properties",
                  "help": "Lead source field -> HubSpot deal property. Keys: " + ", ".join(SOURCE_KEYS)},
    )
    contact_id_property = fields.String(
        load_default="hub_whatsapp_id",
        metadata={"label": "Contact id property",
                  "help": "A unique-value contact property holding the WhatsApp id; it makes contact "
                          "creation idempotent."},
    )
    deal_id_property = fields.String(
        load_default="hub_conversation_id",
        metadata={"label": "Deal id property",
                  "help": "A unique-value deal property holding the hub conversation id."},
    )
    create_missing_properties = fields.Boolean(
        load_default=False,
        metadata={"label": "Create missing properties",
                  "help": "Test connection creates the id and lead source properties that the "
                          "account lacks (needs the crm.schemas.*.write scopes)."},
    )
    # -- inbox mode: WhatsApp threads in the Conversations inbox (inbox.py) ----------------
    mode = fields.String(
        load_default="timeline",
        validate=validate.OneOf(("timeline", "inbox", "both")),
        metadata={"label": "Where WhatsApp goes in HubSpot",
                  "help": "timeline: each message as a WhatsApp communication on the contact and deal. "
                          "inbox: real threads in a Conversations inbox (a custom channel), where agents "
                          "read and reply. both: the two.",
                  "choices": ["timeline", "inbox", "both"]},
    )
    inbox_id = fields.String(
        load_default="",
        validate=validate.Regexp(r"^\d*$", error="The inbox id is a number."),
        metadata={"label": "Conversations inbox",
                  "help": "The inbox the WhatsApp threads go to (inbox mode). Needs the conversations.read scope.",
                  "choices_from": "inboxes"},
    )
    custom_channel_id = fields.String(
        load_default="",
        validate=validate.Regexp(r"^\d*$", error="The custom channel id is a number."),
        metadata={"label": "Custom channel ID",
                  "help": "The channel registered for your HubSpot app (inbox mode). Empty: Test connection "
                          "registers one with the developer API key and app ID below and fills this in."},
    )
    developer_api_key = fields.String(
        load_default="",
        metadata={"label": "Developer API key (custom channel registration)",
                  "help": "From your HubSpot developer account (Keys > Developer API key); only used to "
                          "register the custom channel for the app.",
                  "secret": True},
    )
    app_id = fields.String(
        load_default="",
        validate=validate.Regexp(r"^\d*$", error="The app ID is a number."),
        metadata={"label": "App ID (custom channel registration)",
                  "help": "The ID of your public app in the developer account."},
    )
    channel_accounts = fields.Dict(
        keys=fields.String(), values=fields.String(),
        load_default=dict,
        metadata={"label": "Channel accounts (managed)", "managed": True,
                  "help": "Hub WhatsApp channel -> HubSpot channel account, created by the hub."},
    )
    report_deal_stages = fields.Boolean(
        load_default=False,
        metadata={"label": "Report deal stages to analytics",
                  "help": "Every dealstage change of a deal of a WhatsApp conversation (won or lost by "
                          "hs_is_closed_won / hs_is_closed, with amount and deal_currency_code) becomes a "
                          "deal.stage_changed event for the analytics connectors."},
    )
    stage_rules = fields.List(
        fields.String(),
        load_default=list,
        metadata={"label": "Stage rules",
                  "help": "One per line: " + rules.SYNTAX_HELP,
                  "placeholder": "when stage = closedwon send order_shipped (en_US) with deal.dealname, contact.firstname"},
    )

    @validates("deal_name_template")
    def _deal_name(self, value: str, **_: Any) -> None:
        problem = placeholder_problem(value, DEAL_NAME_FIELDS)
        if problem:
            raise ValidationError(problem)

    @validates("source_properties")
    def _source(self, value: dict[str, str], **_: Any) -> None:
        for key, prop in value.items():
            try:
                _check_property_name(prop)
            except ValidationError as exc:
                raise ValidationError(f"{key}: {exc.messages[0]}") from None

    @validates("contact_id_property")
    def _contact_id(self, value: str, **_: Any) -> None:
        _check_property_name(value)

    @validates("deal_id_property")
    def _deal_id(self, value: str, **_: Any) -> None:
        _check_property_name(value)

    @validates("stage_rules")
    def _rules(self, value: list[str], **_: Any) -> None:
        problems = []
        for number, line in enumerate(value, start=1):
            try:
                rules.parse_rule(line)
            except rules.RuleError as exc:
                problems.append(f"rule {number}: {exc}")
        if problems:
            raise ValidationError(problems)

    @validates_schema
    def _credentials(self, data: dict[str, Any], **_: Any) -> None:
        """The fields the chosen auth mode needs, each error under the field to fill in."""
        problems: dict[str, list[str]] = {}
        if data.get("auth_mode", AUTH_PRIVATE_APP) == AUTH_PRIVATE_APP:
            token = data.get("access_token") or ""
            if not token:
                problems["access_token"] = ["paste the private app access token (or choose oauth)"]
            elif len(token) < 8:
                problems["access_token"] = ["this is too short to be a private app access token"]
        else:
            if not data.get("client_id"):
                problems["client_id"] = ["OAuth needs the app's client ID"]
            if not data.get("client_secret"):
                problems["client_secret"] = ["OAuth needs the app's client secret"]
            uri = data.get("redirect_uri") or ""
            if not uri:
                problems["redirect_uri"] = ["OAuth needs the redirect URI registered in the app"]
            elif not REDIRECT_URI.match(uri):
                problems["redirect_uri"] = ["give the full redirect URI, starting with https:// (or http://localhost)"]
            # Without a code or tokens the connector is saved "not connected yet": the
            # Connect with HubSpot button on its page (or a pasted code) connects it.
        if problems:
            raise ValidationError(problems)

    @validates_schema
    def _inbox(self, data: dict[str, Any], **_: Any) -> None:
        """Inbox mode needs an inbox, and a channel id or what registers one."""
        if data.get("mode", "timeline") == "timeline":
            return
        problems: dict[str, list[str]] = {}
        if data.get("auth_mode", AUTH_PRIVATE_APP) != AUTH_OAUTH:
            # https://developers.hubspot.com/docs/api-reference/2026-03/conversations/custom-channels/guide
            problems["mode"] = ["HubSpot's custom channels work only for a public app installed in the account "
                                "(choose oauth); legacy private app tokens cannot use them"]
        if not data.get("inbox_id"):
            problems["inbox_id"] = ["choose the Conversations inbox the WhatsApp threads go to"]
        if not data.get("custom_channel_id") and not (data.get("developer_api_key") and data.get("app_id")):
            problems["custom_channel_id"] = ["give the custom channel ID, or the developer API key and app ID "
                                             "so that Test connection registers the channel"]
        if not data.get("client_secret"):
            problems["client_secret"] = ["inbox mode needs the app's client secret: it verifies the agents' "
                                         "replies HubSpot sends to the hub"]
        if problems:
            raise ValidationError(problems)

    @validates_schema
    def _stages(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("closed_stage_id") and data.get("closed_stage_id") == data.get("stage_id"):
            raise ValidationError("the closing stage must differ from the stage of new deals",
                                  field_name="closed_stage_id")
