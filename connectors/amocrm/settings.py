"""The amoCRM connector's settings form: what an admin fills in, validated up front.

Field metadata drives the admin form (label, help, secret, choices, placeholder).
Fields marked "managed" hold the OAuth token pair the connector rotates itself; they are
secrets too, so they are stored encrypted and never shown back.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from connectors.amocrm import rules
from connectors.person import new_channel_opens_deal_field
from connectors.base import TEMPLATES_CONTEXT_KEY  # filled by the hub while validating
from hub.shared.text_templates import placeholder_problem

ACCOUNT_DOMAINS = ("amocrm.ru", "amocrm.com", "kommo.com")
DEAL_NAME_PLACEHOLDERS = (
    "contact_name", "phone", "channel_name", "conversation_id", "source", "campaign",
    "utm_source", "utm_medium", "utm_campaign",
)
SOURCE_KEYS = (
    "kind", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid",
    "yclid", "fbclid", "campaign", "link", "code", "landing_page", "referrer",
    "referral.source_url", "referral.source_id", "referral.source_type", "referral.headline",
    "referral.body", "referral.ctwa_clid",
)
DEFAULT_SOURCE_FIELDS = {
    "utm_source": "UTM_SOURCE",
    "utm_medium": "UTM_MEDIUM",
    "utm_campaign": "UTM_CAMPAIGN",
    "utm_content": "UTM_CONTENT",
    "utm_term": "UTM_TERM",
    "gclid": "GCLID",
    "yclid": "YCLID",
    "fbclid": "FBCLID",
    "referrer": "REFERRER",
}
_FIELD_REF = re.compile(r"^(?:\d+|[A-Z][A-Z0-9_]*)$")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def account_url_problem(url: str) -> str | None:
    """Why `url` is not an amoCRM/Kommo account address, or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "give only the account address, e.g. https://yourcompany.amocrm.ru (no path)"
    if _is_loopback(host):
        return None  # the local emulator (tests, `hub demo`)
    if parts.scheme != "https":
        return "amoCRM accounts are reached over https"
    if not any(host.endswith("." + d) and host.count(".") == d.count(".") + 1 for d in ACCOUNT_DOMAINS):
        return ("not an amoCRM or Kommo account address; it looks like "
                "https://<subdomain>.amocrm.ru, .amocrm.com or .kommo.com")
    return None


def subdomain_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return "" if _is_loopback(host) else host.split(".")[0]


class AmoCrmSettings(Schema):
    base_url = fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False,
        metadata={"label": "Account address",
                  "help": "Your amoCRM or Kommo account, as in the browser's address bar.",
                  "placeholder": "https://yourcompany.amocrm.ru"},
    )
    # -- credentials -------------------------------------------------------------
    long_lived_token = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Long-lived token",
                  "help": "From amoCRM: Settings > Integrations > your private integration > "
                          "Keys and scopes > Long-lived token. Use this OR the OAuth fields below.",
                  "secret": True},
    )
    client_id = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "OAuth integration ID",
                  "help": "The integration ID (client_id) of your amoCRM integration.",
                  "placeholder": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
    )
    client_secret = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "OAuth secret key", "help": "The integration's secret key (client_secret).",
                  "secret": True},
    )
    redirect_uri = fields.Url(
        load_default=None, allow_none=True, require_tld=False,
        metadata={"label": "OAuth redirect URI",
                  "help": "Exactly as entered in the integration's settings in amoCRM. To connect with the "
                          "Connect with amoCRM button, enter there the hub's callback shown on the "
                          "connector's page; the button sets this field to it."},
    )
    authorize_url = fields.String(
        load_default="",
        metadata={"label": "Authorization page (OAuth)",
                  "help": "Where Connect with amoCRM sends your browser. Leave blank: "
                          "https://www.amocrm.ru/oauth, or https://www.kommo.com/oauth for a Kommo account.",
                  "placeholder": "https://www.amocrm.ru/oauth"},
    )
    authorization_code = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Authorization code",
                  "help": "Connect with amoCRM fills it in; or paste a fresh code (valid 20 minutes) from "
                          "the integration's 'Keys and scopes' tab to connect or to re-connect after the "
                          "access was revoked. The hub exchanges it once and forgets it.",
                  "secret": True},
    )
    access_token = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Access token (managed)", "secret": True, "managed": True,
                  "help": "Kept up to date by the hub; leave blank."},
    )
    refresh_token = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Refresh token (managed)", "secret": True, "managed": True,
                  "help": "Rotated by the hub at every refresh; leave blank."},
    )
    access_token_expires_at = fields.Integer(
        load_default=None, allow_none=True,
        metadata={"label": "Access token expiry (managed)", "managed": True,
                  "help": "Unix time; kept up to date by the hub."},
    )
    # -- deals --------------------------------------------------------------------
    pipeline_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1),
        metadata={"label": "Pipeline for new deals",
                  "help": "Empty: amoCRM's main pipeline."},
    )
    status_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1),
        metadata={"label": "Stage for new deals", "help": "Empty: the pipeline's first stage."},
    )
    deal_name_template = fields.String(
        load_default="WhatsApp: {contact_name}",
        validate=validate.Length(min=1, max=250),
        metadata={"label": "Deal name",
                  "help": "Placeholders: " + ", ".join("{" + p + "}" for p in DEAL_NAME_PLACEHOLDERS)},
    )
    deal_mode = fields.String(
        load_default="reuse_open",
        validate=validate.OneOf(["reuse_open", "always_new"]),
        metadata={"label": "New conversation of a known customer",
                  "choices": [["reuse_open", "Reuse the customer's open deal in this pipeline"],
                              ["always_new", "Always create a new deal"]]},
    )
    new_channel_opens_deal = new_channel_opens_deal_field()
    existing_contacts = fields.String(
        load_default="search",
        validate=validate.OneOf(["search", "create"]),
        metadata={"label": "Customers already in amoCRM",
                  "choices": [["search", "Look each new phone number up in amoCRM first "
                                         "(one extra request per new customer)"],
                              ["create", "Create contacts for new numbers without looking up "
                                         "(fastest; use when amoCRM has no earlier contacts or its "
                                         "duplicate control is on)"]]},
    )
    responsible_user_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1),
        metadata={"label": "Responsible user for new deals",
                  "help": "Used when the conversation has no operator mapped below. "
                          "Empty: the user who authorized the integration."},
    )
    operator_users = fields.Dict(
        keys=fields.Email(), values=fields.Integer(validate=validate.Range(min=1)),
        load_default=dict,
        metadata={"label": "Operators -> amoCRM users",
                  "help": "Hub operator e-mail -> amoCRM user id; assignments in the hub set the "
                          "deal's responsible user."},
    )
    close_status_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1),
        metadata={"label": "Stage when a conversation is closed",
                  "help": "Empty: closing a conversation leaves the deal where it is. "
                          "142 = won, 143 = lost."},
    )
    tags = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)), load_default=lambda: ["WhatsApp"],
        metadata={"label": "Tags on new deals"},
    )
    source_fields = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SOURCE_KEYS)), values=fields.String(),
        load_default=lambda: dict(DEFAULT_SOURCE_FIELDS),
        metadata={"label": "Lead source -> deal fields",
                  "help": "Lead source key (" + ", ".join(SOURCE_KEYS) + ") -> deal field code "
                          "(e.g. UTM_SOURCE) or field id."},
    )
    # -- timeline -----------------------------------------------------------------
    timeline_messages = fields.String(
        load_default="all", validate=validate.OneOf(["all", "inbound", "outbound", "none"]),
        metadata={"label": "Messages on the deal's timeline",
                  "choices": [["all", "All messages"], ["inbound", "Only the customer's"],
                              ["outbound", "Only ours"], ["none", "None"]]},
    )
    note_type = fields.String(
        load_default="common", validate=validate.OneOf(["common", "service_message"]),
        metadata={"label": "Note type",
                  "choices": [["common", "Text note"],
                              ["service_message", "Service message (shown as from the integration)"]]},
    )
    phone_enum = fields.String(
        load_default="MOB", validate=validate.OneOf(["MOB", "WORK"]),
        metadata={"label": "Phone type on new contacts",
                  "choices": [["MOB", "Mobile"], ["WORK", "Work"]]},
    )
    # -- from amoCRM -------------------------------------------------------------------
    stage_rules = fields.List(
        fields.String(), load_default=list,
        metadata={"label": "Stage -> WhatsApp template rules",
                  "help": "One per line: STAGE_ID -> template:language(variables), e.g. "
                          '7000001/142 -> order_delivered:en(contact.first_name, '
                          'lead.field[ORDER_NO] | "your order"). amoCRM must call this connector\'s '
                          "webhook URL on lead status changes: Test connection subscribes it."},
    )
    report_deal_stages = fields.Boolean(
        load_default=False,
        metadata={"label": "Report deal stages to analytics",
                  "help": "Every stage change of a deal with a WhatsApp conversation (won 142, lost 143 "
                          "or another stage, with the budget) becomes a deal.stage_changed event for the "
                          "analytics connectors. Test connection subscribes the status webhook."},
    )
    deal_currency = fields.String(
        load_default="RUB", validate=validate.Regexp(r"^[A-Z]{3}$", error="a three-letter ISO code, e.g. RUB"),
        metadata={"label": "Currency of deal budgets", "help": "ISO 4217 code of the account's currency."},
    )
    reply_prefix = fields.String(
        load_default="/wa", validate=validate.Length(max=20),
        metadata={"label": "Reply prefix for notes",
                  "help": "A deal note starting with this is sent to the customer as a WhatsApp "
                          "message (needs the 'note added to deal' webhook). Empty: off."},
    )
    # -- chat in amoCRM (Chats API, amojo) ------------------------------------------
    mode = fields.String(
        load_default="notes", validate=validate.OneOf(["notes", "chat", "both"]),
        metadata={"label": "What amoCRM shows",
                  "choices": [["notes", "Timeline notes on the deal (replies with the note prefix)"],
                              ["chat", "A real chat in amoCRM (Chats API): managers answer in the deal card"],
                              ["both", "Both: the chat and the timeline notes"]],
                  "help": "The chat needs a chat channel registered for your integration by amoCRM "
                          "(channel id and secret below)."},
    )
    chat_channel_id = fields.String(
        load_default="", validate=validate.Length(max=64),
        metadata={"label": "Chat channel id",
                  "help": "From amoCRM support's answer to the channel registration (a UUID). Register the "
                          "connector's webhook URL shown in the hub as the channel's hook URL (hook v2).",
                  "placeholder": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
    )
    chat_channel_secret = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Chat channel secret", "secret": True,
                  "help": "The channel's secret key; signs every Chats API request and hook."},
    )
    amojo_account_id = fields.String(
        load_default="", validate=validate.Length(max=64),
        metadata={"label": "Account id in the Chats API (amojo_id)",
                  "help": "Leave blank: Test connection reads it (GET /api/v4/account?with=amojo_id)."},
    )
    amojo_base_url = fields.Url(
        load_default="https://amojo.amocrm.ru", schemes={"http", "https"}, require_tld=False,
        metadata={"label": "Chats API address",
                  "help": "https://amojo.amocrm.ru; https://amojo.kommo.com for Kommo accounts."},
    )
    chat_title = fields.String(
        load_default="WhatsApp", validate=validate.Length(min=1, max=100),
        metadata={"label": "Channel name shown in amoCRM"},
    )
    chat_scope_id = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Chat scope (managed)", "managed": True,
                  "help": "Set when the channel is connected to the account; leave blank."},
    )
    timeout_seconds = fields.Float(
        load_default=15.0, validate=validate.Range(min=0.2, max=120),
        metadata={"label": "Request timeout (seconds)"},
    )
    requests_per_second = fields.Float(
        load_default=7.0, validate=validate.Range(min=0.5, max=7.0),
        metadata={"label": "Requests per second",
                  "help": "amoCRM allows 7 per second per account, shared by every worker."},
    )

    @validates("base_url")
    def _account(self, value: str, **_: Any) -> None:
        problem = account_url_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates("deal_name_template")
    def _deal_name(self, value: str, **_: Any) -> None:
        problem = placeholder_problem(value, DEAL_NAME_PLACEHOLDERS)
        if problem:
            raise ValidationError(problem)

    @validates("source_fields")
    def _source_fields(self, value: dict[str, str], **_: Any) -> None:
        for key, ref in value.items():
            if not _FIELD_REF.match(str(ref)):
                raise ValidationError(
                    f"{key}: {ref!r} is neither a field id (digits) nor a field code (e.g. UTM_SOURCE)")

    @validates("stage_rules")
    def _stage_rules(self, value: list[str], **_: Any) -> None:
        lines = [line for line in value if line.strip()]
        try:
            parsed = rules.parse_rules(lines)
        except rules.RuleError as exc:
            raise ValidationError(str(exc)) from None
        templates = _templates_in_context()
        if templates is not None:
            problems = rules.check_templates(parsed, templates)
            if problems:
                raise ValidationError(problems)

    @validates_schema
    def _credentials(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("status_id") and not data.get("pipeline_id"):
            raise ValidationError("choose the pipeline the stage belongs to", "pipeline_id")
        if data.get("mode") in ("chat", "both"):
            if not (data.get("chat_channel_id") or "").strip():
                raise ValidationError("the chat needs the chat channel id amoCRM registered for the integration",
                                      "chat_channel_id")
            if not data.get("chat_channel_secret"):
                raise ValidationError("the chat needs the chat channel's secret", "chat_channel_secret")
        if data.get("long_lived_token"):
            return
        missing = [name for name in ("client_id", "client_secret", "redirect_uri") if not data.get(name)]
        if missing:
            raise ValidationError(
                "give a long-lived token, or the OAuth integration ID, secret key and redirect URI "
                f"(missing: {', '.join(missing)})", "long_lived_token")
        # Without a code or tokens the connector is saved "not connected yet": the Connect
        # with amoCRM button on its page (or a pasted code) connects it.
        url = data.get("authorize_url") or ""
        if url and not re.match(r"^https?://[^\s/?#]+(/\S*)?$", url):
            raise ValidationError("give the full address of the authorization page, starting with https://",
                                  "authorize_url")


def _templates_in_context() -> list[dict[str, Any]] | None:
    """The hub's stored WhatsApp templates when the caller provides them through
    marshmallow's context (key "whatsapp_templates"); None when it does not."""
    try:
        from marshmallow.experimental.context import Context
    except ImportError:  # pragma: no cover - marshmallow < 4
        return None
    ctx = Context.get(default=None)
    if not isinstance(ctx, dict) or TEMPLATES_CONTEXT_KEY not in ctx:
        return None
    return list(ctx[TEMPLATES_CONTEXT_KEY])
