"""HubSpot connector: WhatsApp conversations as contacts, deals and WHATS_APP communications.

See README.md in this folder for the API facts it relies on.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from connectors.base import CheckResult, Command, Connector, HubEvent, InboundRequest, Outcome, WebhookRejected
from connectors.hubspot import mapping, properties, rules, signature, webhooks
from connectors.hubspot.client import (
    AuthFailed, ClientConfig, HubSpotClient, HubSpotError, OAuthFailed, RateLimited, Unavailable,
)
from connectors.hubspot.oauth import OAuthTokens, PrivateAppToken
from connectors.hubspot.settings import AUTH_OAUTH, DEFAULT_AUTHORIZE_URL, HubSpotSettings
from connectors.hubspot.sync import HANDLED, OwnerDirectory, WaveSync
from hub.security import redact_text

log = logging.getLogger(__name__)

AUTH_WAIT_SECONDS = 300
# What the hub needs of the account (README.md); the schema scopes only to create the
# hub's properties, which an account may refuse without breaking the rest.
OAUTH_SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.deals.read",
                "crm.objects.deals.write", "crm.objects.owners.read")
OAUTH_OPTIONAL_SCOPES = ("crm.schemas.contacts.write", "crm.schemas.deals.write")
APP_URL = "https://app.hubspot.com"


class HubSpotConnector(Connector):
    kind = "hubspot"
    title = "HubSpot"
    Settings = HubSpotSettings
    handles = HANDLED
    # Batch endpoints take 100 inputs; claim enough that each wave can fill them.
    claim_size = 400
    scratch_links = frozenset({"hubspot_communication_intent", "hubspot_task_intent"})

    def __init__(self, ctx):
        super().__init__(ctx)
        base_url = self.settings.get("base_url") or "https://api.hubapi.com"
        config = ClientConfig(
            base_url=base_url,
            token=self.settings.get("access_token") or "",
            per_10_seconds=int(self.settings.get("rate_limit_per_10s", 100)),
            search_per_second=int(self.settings.get("search_rate_per_second", 5)),
        )
        self.uses_oauth = self.settings.get("auth_mode") == AUTH_OAUTH
        self._flagged_unhealthy = False
        self.tokens: OAuthTokens | PrivateAppToken
        if self.uses_oauth:
            # One token keeper for both clients: a renewal by either serves the other.
            self.tokens = OAuthTokens(
                self.settings, base_url=base_url, http=ctx.http, clock=ctx.clock, timeout=ctx.http_timeout,
                update_settings=ctx.update_settings,
                on_connected=lambda message: self._health(True, message),
            )
        else:
            self.tokens = PrivateAppToken(config.token)
        self.client = HubSpotClient(config, ctx.http, limiter=ctx.limiter, window_limiter=ctx.window_limiter,
                                    clock=ctx.clock,
                                    timeout=ctx.http_timeout, auth=self.tokens)
        # The admin's and the webhook's few requests (Test connection, choices, creating
        # properties, reading a deal back) pace themselves in-process: the hub runs check()
        # with a frozen clock, under which the shared database bucket would never refill.
        self.admin_client = HubSpotClient(config, ctx.http, limiter=None, clock=ctx.clock,
                                          timeout=ctx.http_timeout, auth=self.tokens)
        self.owners = OwnerDirectory(self.client, self.settings)
        self._closed_stages: set[str] | None = None

    # -- helpers ----------------------------------------------------------------------
    def closed_stages(self) -> set[str]:
        """Stages HubSpot marks closed (metadata.isClosed), loaded once per instance."""
        if self._closed_stages is None:
            self._closed_stages = mapping.closed_stages(self.client.pipelines("deals"))
        return self._closed_stages

    def _health(self, ok: bool, message: str) -> None:
        if self.ctx.mark_health is not None:
            self.ctx.mark_health(ok, message)
        self._flagged_unhealthy = not ok

    def auth_problem(self, exc: AuthFailed) -> str:
        """What the admin must do about a refused credential, for the health line and the
        waiting deliveries (never a token: messages are built from codes, not values)."""
        if isinstance(exc, OAuthFailed):
            return exc.message
        what = f"{exc.status} {exc.category or ''}".strip()
        if exc.status == 403:
            return (f"HubSpot refused the request ({what}): the {'app' if self.uses_oauth else 'private app'} "
                    f"lacks a scope listed in the settings; add it"
                    + (", then install the app again and paste the new authorization code" if self.uses_oauth
                       else " and save the token again"))
        if self.uses_oauth:
            return (f"HubSpot refused the OAuth access token even after renewing it ({what}): the app may have "
                    f"been uninstalled; install it again and paste the new authorization code")
        return (f"HubSpot refused the access token ({what}): create a new private app token with the "
                f"scopes listed in the settings and save it")

    # -- delivery -------------------------------------------------------------------------
    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        sync = WaveSync(self.client, self.ctx.links, self.settings, self.owners, self.closed_stages)
        try:
            outcomes = sync.run(batch)
        except AuthFailed as exc:
            message = self.auth_problem(exc)
            self._health(False, message)
            retry_at = self.ctx.clock() + timedelta(seconds=AUTH_WAIT_SECONDS)
            return [Outcome.wait(message, retry_at=retry_at) for _ in batch]
        except RateLimited as exc:  # the daily budget is spent
            self._health(False, f"HubSpot daily API limit reached; deliveries resume at {exc.retry_at:%H:%M} UTC")
            return [Outcome.wait(exc.message, retry_at=exc.retry_at) for _ in batch]
        if sync.config_problems:
            self._health(False, sync.config_problems[0])
        elif self._flagged_unhealthy and any(o.status == "done" for o in outcomes):
            self._health(True, "deliveries to HubSpot succeed again")
        return outcomes

    def preview(self, batch: list[HubEvent]) -> list[dict[str, Any]]:
        """The requests deliver() would make for these events, assuming nothing exists in
        HubSpot beyond the stored links (a search may find more and save a create)."""
        from connectors.hubspot.preview import plan
        return plan(batch, self.ctx.links, self.settings, self.owners)

    # -- admin ----------------------------------------------------------------------------
    def create_missing_properties(self) -> list[str]:
        """The explicit action behind "Create missing properties" in the form."""
        return properties.create_missing(self.admin_client, self.settings)

    @staticmethod
    def link_url(settings: dict[str, Any], crm_type: str, crm_id: str) -> str | None:
        """HubSpot opens a record at app.hubspot.com/contacts/<account id>/record/<object
        type id>/<id>; without the account id in the settings there is no link."""
        object_type = {"contacts": "0-1", "deals": "0-3"}.get(crm_type)
        portal = str(settings.get("portal_id") or "")
        if not object_type or not portal.isdigit() or not crm_id.isdigit():
            return None
        return f"{APP_URL}/contacts/{portal}/record/{object_type}/{crm_id}"

    # -- OAuth: the Connect with HubSpot button --------------------------------------------
    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """HubSpot's install page for this app; None unless the settings use OAuth."""
        if not self.uses_oauth or not self.settings.get("client_id"):
            return None
        query = urlencode({"client_id": self.settings["client_id"], "redirect_uri": redirect_uri,
                           "scope": " ".join(OAUTH_SCOPES), "optional_scope": " ".join(OAUTH_OPTIONAL_SCOPES),
                           "state": state})
        return f"{self.settings.get('authorize_url') or DEFAULT_AUTHORIZE_URL}?{query}"

    def accept_authorization(self, params: dict[str, str], redirect_uri: str) -> dict[str, Any]:
        """The settings to store from HubSpot's redirect: the code, exchanged by the next
        check(), and the redirect URI it was issued for (the exchange must name it)."""
        if params.get("error"):
            raise ValueError(f"HubSpot did not grant access: {params.get('error_description') or params['error']}")
        if not params.get("code"):
            raise ValueError("HubSpot's redirect carried no authorization code")
        return {"authorization_code": params["code"], "redirect_uri": redirect_uri}

    def check(self) -> CheckResult:
        try:
            details = self.admin_client.account_details()
            pipelines = self.admin_client.pipelines("deals")
            created = self.create_missing_properties() if self.settings.get("create_missing_properties") else []
            absent = properties.missing(self.admin_client, self.settings)
            owners = self.admin_client.owners()
        except AuthFailed as exc:
            said = "" if isinstance(exc, OAuthFailed) else f" ({redact_text(exc.message, self.tokens.secrets())})"
            return CheckResult(False, self.auth_problem(exc) + said, {"response": exc.response} if exc.response else {})
        except (Unavailable, HubSpotError) as exc:
            return CheckResult(False, f"HubSpot could not be reached: {exc}")
        problems = []
        stages = {p["id"]: {s["id"] for s in p.get("stages") or []} for p in pipelines}
        pipeline = self.settings.get("pipeline_id")
        if pipeline not in stages:
            problems.append(f"pipeline {pipeline!r} does not exist (have: {', '.join(sorted(stages))})")
        else:
            for field in ("stage_id", "closed_stage_id"):
                stage = self.settings.get(field)
                if stage and stage not in stages[pipeline]:
                    problems.append(f"{field}: stage {stage!r} is not in pipeline {pipeline!r}")
        if absent:
            names = ", ".join(f"{t}.{d['name']}" for t, d in absent)
            problems.append(f"missing properties {names}: tick 'Create missing properties' and test again")
        details_out = {"portal_id": details.get("portalId"), "owners": len(owners), "created_properties": created}
        self._remember_portal(details.get("portalId"))
        if problems:
            return CheckResult(False, "; ".join(problems), details_out)
        self._flagged_unhealthy = False
        return CheckResult(True, f"Connected to HubSpot account {details.get('portalId')}: pipeline "
                                 f"{pipeline!r}, {len(owners)} owners"
                                 + (f", created {', '.join(created)}" if created else ""), details_out)

    def _remember_portal(self, portal_id: Any) -> None:
        """The account ID, for the inbox's links to records (link_url), kept from the check."""
        portal = str(portal_id or "")
        if portal.isdigit() and portal != str(self.settings.get("portal_id") or "") and self.ctx.update_settings:
            self.ctx.update_settings(lambda fresh: {"portal_id": portal} if fresh.get("portal_id") != portal else None)
            self.settings["portal_id"] = portal

    def choices(self) -> dict[str, list[tuple[str, str]]]:
        pipelines = self.admin_client.pipelines("deals")
        owners = self.admin_client.owners()
        stage_choices = [(s["id"], f"{p['label']} / {s['label']}") for p in pipelines for s in p.get("stages") or []]
        owner_choices = [(str(o["id"]), f"{o.get('firstName', '')} {o.get('lastName', '')} <{o.get('email', '')}>".strip())
                         for o in owners]
        return {
            "pipeline_id": [(p["id"], p["label"]) for p in pipelines],
            "stage_id": stage_choices,
            "closed_stage_id": [("", "(leave the deal where it is)")] + stage_choices,
            "default_owner_id": [("", "(none)")] + owner_choices,
            "owner_map": owner_choices,
        }

    # -- from HubSpot -------------------------------------------------------------------------
    def handle_webhook(self, request: InboundRequest) -> list[Command]:
        uri = self.settings.get("webhook_url") or request.url
        try:
            signature.verify(self.settings.get("client_secret") or "", request.method, uri, request.body,
                             request.headers, self.ctx.clock())
        except signature.BadSignature as exc:
            raise WebhookRejected(401, f"HubSpot signature refused: {exc}") from None
        try:
            changes = webhooks.stage_changes(request.body)
        except webhooks.PayloadError as exc:
            raise WebhookRejected(400, str(exc)) from None
        stage_rules = rules.parse_rules(self.settings.get("stage_rules") or [])
        try:
            return list(webhooks.commands_for(changes, stage_rules, self.admin_client, self.settings))
        except (Unavailable, HubSpotError) as exc:
            # 5xx makes HubSpot retry the delivery later.
            raise WebhookRejected(503, f"could not read the deal from HubSpot: {exc}") from None


__all__ = ["HubSpotConnector", "mapping"]
