"""HubSpot connector: WhatsApp conversations as contacts, deals and WHATS_APP communications.

See README.md in this folder for the API facts it relies on.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from connectors.base import CheckResult, Command, Connector, HubEvent, InboundRequest, Outcome, WebhookRejected
from connectors.hubspot import mapping, properties, rules, signature, webhooks
from connectors.hubspot.client import (
    AuthFailed, ClientConfig, HubSpotClient, HubSpotError, RateLimited, Unavailable,
)
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.sync import HANDLED, OwnerDirectory, WaveSync

log = logging.getLogger(__name__)

AUTH_WAIT_SECONDS = 300


class HubSpotConnector(Connector):
    kind = "hubspot"
    title = "HubSpot"
    Settings = HubSpotSettings
    handles = HANDLED
    # Batch endpoints take 100 inputs; claim enough that each wave can fill them.
    claim_size = 400
    scratch_links = frozenset({"hubspot_communication_intent"})

    def __init__(self, ctx):
        super().__init__(ctx)
        config = ClientConfig(
            base_url=self.settings.get("base_url") or "https://api.hubapi.com",
            token=self.settings["access_token"],
            per_10_seconds=int(self.settings.get("rate_limit_per_10s", 100)),
            search_per_second=int(self.settings.get("search_rate_per_second", 5)),
        )
        self.client = HubSpotClient(config, ctx.http, limiter=ctx.limiter, clock=ctx.clock, timeout=ctx.http_timeout)
        # The admin's and the webhook's few requests (Test connection, choices, creating
        # properties, reading a deal back) pace themselves in-process: the hub runs check()
        # with a frozen clock, under which the shared database bucket would never refill.
        self.admin_client = HubSpotClient(config, ctx.http, limiter=None, clock=ctx.clock, timeout=ctx.http_timeout)
        self.owners = OwnerDirectory(self.client, self.settings)
        self._closed_stages: set[str] | None = None
        self._flagged_unhealthy = False

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

    # -- delivery -------------------------------------------------------------------------
    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        sync = WaveSync(self.client, self.ctx.links, self.settings, self.owners, self.closed_stages)
        try:
            outcomes = sync.run(batch)
        except AuthFailed as exc:
            message = (f"HubSpot refused the access token ({exc.status} {exc.category or ''}): create a "
                       f"new private app token with the scopes listed in the settings and save it")
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

    def check(self) -> CheckResult:
        try:
            details = self.admin_client.account_details()
            pipelines = self.admin_client.pipelines("deals")
            created = self.create_missing_properties() if self.settings.get("create_missing_properties") else []
            absent = properties.missing(self.admin_client, self.settings)
            owners = self.admin_client.owners()
        except AuthFailed as exc:
            return CheckResult(False, f"HubSpot refused the access token: {exc.message}")
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
        if problems:
            return CheckResult(False, "; ".join(problems), details_out)
        self._flagged_unhealthy = False
        return CheckResult(True, f"Connected to HubSpot account {details.get('portalId')}: pipeline "
                                 f"{pipeline!r}, {len(owners)} owners"
                                 + (f", created {', '.join(created)}" if created else ""), details_out)

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
