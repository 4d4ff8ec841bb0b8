"""HubSpot connector: WhatsApp conversations as contacts, deals and WHATS_APP communications.

See README.md in this folder for the API facts it relies on.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from connectors import whatsapp_words
from connectors.contact_updates import TYPE as CONTACT_UPDATED
from connectors.base import CheckResult, Command, Connector, HubEvent, InboundRequest, Outcome, WebhookRejected
from connectors.hubspot.contact_updates import ContactUpdates
from connectors.hubspot import inbox, inbox_hooks, mapping, merges, properties, rules, signature, webhooks
from connectors.automation_notes import with_automation_notes
from connectors.broadcast_notes import with_broadcast_notes
from connectors.hubspot.client import ClientConfig, HubSpotClient
from connectors.hubspot.errors import (
    AuthFailed, HubSpotError, OAuthFailed, RateLimited, Unavailable,
)
from connectors.hubspot.oauth import OAuthTokens, PrivateAppToken
from connectors.hubspot.settings import AUTH_OAUTH, DEFAULT_AUTHORIZE_URL, HubSpotSettings
from connectors.hubspot.sync import HANDLED, OwnerDirectory, WaveSync
from hub.shared.security import redact_text

log = logging.getLogger(__name__)

AUTH_WAIT_SECONDS = 300
# What the hub needs of the account (README.md); the schema scopes only to create the
# hub's properties, which an account may refuse without breaking the rest.
OAUTH_SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.deals.read",
                "crm.objects.deals.write", "crm.objects.owners.read")
OAUTH_OPTIONAL_SCOPES = ("crm.schemas.contacts.write", "crm.schemas.deals.write")
# Inbox mode: publish into and read the custom channel, list the inboxes (README.md).
INBOX_SCOPES = ("conversations.custom_channels.read", "conversations.custom_channels.write", "conversations.read")
APP_URL = "https://app.hubspot.com"


class HubSpotConnector(Connector):
    kind = "hubspot"
    title = "HubSpot"
    Settings = HubSpotSettings
    handles = HANDLED | inbox.INBOX_TYPES | merges.TYPES | {"broadcast.recipient", CONTACT_UPDATED}
    # Batch endpoints take 100 inputs; claim enough that each wave can fill them.
    claim_size = 400
    scratch_links = frozenset({"hubspot_communication_intent", "hubspot_task_intent", inbox.INTENT})

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
        self.mode = self.settings.get("mode") or inbox.MODE_TIMELINE
        self._pipelines: list[dict[str, Any]] | None = None

    # -- helpers ----------------------------------------------------------------------
    def pipelines(self) -> list[dict[str, Any]]:
        """The account's deal pipelines and their stages, loaded once per instance."""
        if self._pipelines is None:
            self._pipelines = self.client.pipelines("deals")
        return self._pipelines

    def closed_stages(self) -> set[str]:
        """Stages HubSpot marks closed (metadata.isClosed)."""
        return mapping.closed_stages(self.pipelines())

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
        sync = WaveSync(self.client, self.ctx.links, self.settings, self.owners, self.closed_stages,
                        self.pipelines)
        try:
            outcomes = self._deliver(batch, sync)
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

    def _deliver(self, batch: list[HubEvent], sync: WaveSync) -> list[Outcome]:
        """The inbox and/or the timeline; an event is done when both are (a retry repeats
        only what is not stored yet)."""
        outcomes: list[Outcome] | None = None
        if self.mode in (inbox.MODE_INBOX, inbox.MODE_BOTH):
            if not self.settings.get("custom_channel_id") and self.ctx.update_settings is not None:
                # Test connection may have registered it after this instance was built.
                fresh = self.ctx.update_settings(lambda _current: None) or {}
                if fresh.get("custom_channel_id"):
                    self.settings["custom_channel_id"] = str(fresh["custom_channel_id"])
            if not self.settings.get("custom_channel_id"):
                wait = Outcome.wait("inbox mode: no custom channel yet; press Test connection to register it",
                                    retry_at=self.ctx.clock() + timedelta(seconds=AUTH_WAIT_SECONDS))
                return [wait for _ in batch]
            outcomes = self._inbox_sync().run(batch)
        if self.mode in (inbox.MODE_TIMELINE, inbox.MODE_BOTH):
            timeline = [e for e in with_automation_notes(with_broadcast_notes(batch)) if e.type in HANDLED]
            # links first: a conversation event of the same wave already finds the contact they name
            folds = self._person_merges([e for e in batch if e.type in merges.TYPES], sync)
            folds.update(self._contact_updates([e for e in batch if e.type == CONTACT_UPDATED], sync))
            notes = iter(sync.run(timeline) if timeline else [])
            merged = [folds[e.id] if e.id in folds else next(notes) if e.type in HANDLED | {"broadcast.recipient"}
                      else Outcome.done({"skipped": f"{e.type}: not on the timeline"}) for e in batch]
            outcomes = merged if outcomes is None else [c if c.status != "done" else n
                                                        for c, n in zip(outcomes, merged)]
        assert outcomes is not None
        return outcomes

    def _person_merges(self, events: list[HubEvent], sync: WaveSync) -> dict[str, Outcome]:
        """contact.linked / contact.unlinked: the contact's HubSpot contact folded into the
        person's (or its link pointed back); connectors/hubspot/merges.py."""
        folding = merges.PersonMerges(self.client, self.ctx.links)
        out: dict[str, Outcome] = {}
        for event in events:
            try:
                out[event.id] = folding.apply(event)
            except (HubSpotError, Unavailable) as exc:
                out[event.id] = sync.outcome_for(exc)
        return out

    def _contact_updates(self, events: list[HubEvent], sync: WaveSync) -> dict[str, Outcome]:
        """contact.updated: the HubSpot contact's name and phones (connectors/hubspot/contact_updates.py)."""
        if not events:
            return {}
        updates = ContactUpdates(self.client, self.ctx.links, self.ctx.clock, sync.outcome_for)
        return {event.id: updates.apply(event) for event in events}

    # -- inbox mode: the custom channel -------------------------------------------------------
    def _inbox_sync(self) -> inbox.InboxSync:
        return inbox.InboxSync(self.client, self.ctx.links, self._channel_id(), self._channel_account,
                               self._inbox_failure)

    def _channel_id(self) -> str:
        return str(self.settings.get("custom_channel_id") or "")

    def _inbox_failure(self, exc: Exception) -> Outcome:
        if isinstance(exc, (AuthFailed, RateLimited)) and (not isinstance(exc, RateLimited) or exc.daily):
            raise exc
        if isinstance(exc, Unavailable):
            return Outcome.retry(exc.message, retry_at=exc.retry_at, response=exc.response)
        assert isinstance(exc, HubSpotError)
        return Outcome.dead(exc.message, response=exc.response)

    def _channel_account(self, channel: dict[str, Any], client: HubSpotClient | None = None) -> tuple[str, str]:
        """(channel account id, business phone) of a hub WhatsApp channel: the stored one,
        else the account HubSpot has for the number in the chosen inbox, else a new one.
        Looked up and created under the lock on the connector's row, so two workers make one;
        by an in-process paced client with the token taken before the lock (neither the shared
        limiter's rows nor an OAuth renewal, which locks the same row, may happen under it)."""
        if client is None:
            token = self.tokens.bearer(pace=None)
            client = HubSpotClient(self.admin_client.config, self.ctx.http, limiter=None, clock=self.ctx.clock,
                                   timeout=self.ctx.http_timeout, auth=PrivateAppToken(token))
        phone = mapping.e164(channel.get("display_number"))
        key = str(channel.get("id") or phone or "")
        if not phone or not key:
            raise inbox.PayloadError("the conversation's channel has no display_number for the channel account")
        known = (self.settings.get("channel_accounts") or {}).get(key)
        if known:
            return str(known), phone
        channel_id, inbox_id = self._channel_id(), str(self.settings.get("inbox_id") or "")

        def find_or_create(fresh: dict[str, Any]) -> dict[str, Any] | None:
            accounts = dict(fresh.get("channel_accounts") or {})
            if accounts.get(key):
                return None
            found = [a for a in client.channel_accounts(channel_id, phone)
                     if str(a.get("inboxId")) == inbox_id and not a.get("archived")]
            account = found[0] if found else client.create_channel_account(channel_id, {
                "inboxId": inbox_id, "name": f"WhatsApp {channel.get('name') or ''} {phone}".replace("  ", " ").strip(),
                "deliveryIdentifier": {"type": inbox.PHONE, "value": phone}, "authorized": True})
            accounts[key] = str(account["id"])
            return {"channel_accounts": accounts}

        if self.ctx.update_settings is not None:
            stored = self.ctx.update_settings(find_or_create)
            accounts = (stored or {}).get("channel_accounts") or {}
        else:
            accounts = (find_or_create(self.settings) or {}).get("channel_accounts") or {}
        self.settings["channel_accounts"] = {**(self.settings.get("channel_accounts") or {}), **accounts}
        return str(self.settings["channel_accounts"][key]), phone

    def _register_channel(self) -> str:
        """The custom channel id: the stored one, else registered with the developer API key."""
        channel = str(self.settings.get("custom_channel_id") or "")
        if channel:
            return channel
        key, app_id = self.settings.get("developer_api_key") or "", self.settings.get("app_id") or ""
        if not key or not app_id:
            raise ValueError("give the custom channel ID, or the developer API key and app ID to register one")
        hook = self.ctx.webhook_url.rstrip("/") + "/inbox" if self.ctx.webhook_url else ""
        created = self.admin_client.create_custom_channel({
            "name": "WhatsApp (hub)", "webhookUrl": hook, "capabilities": inbox.CAPABILITIES,
            "channelDescription": "WhatsApp conversations of the hub", "channelAccountConnectionRedirectUrl": ""},
            str(key), str(app_id))
        channel = str(created["id"])
        if self.ctx.update_settings:
            self.ctx.update_settings(lambda fresh: {"custom_channel_id": channel})
        self.settings["custom_channel_id"] = channel
        return channel

    def _check_inbox(self) -> tuple[list[str], dict[str, Any], str]:
        """Each hop of inbox mode: the channel (registered if needed), the inbox, the
        channel accounts bound to it."""
        problems: list[str] = []
        details: dict[str, Any] = {}
        try:
            channel = self._register_channel()
        except ValueError as exc:
            return [str(exc)], details, ""
        except HubSpotError as exc:
            return [f"the custom channel could not be registered: {exc.message}"], details, ""
        details["custom_channel_id"] = channel
        try:
            info = self.admin_client.custom_channel(channel)
        except HubSpotError as exc:
            return [f"custom channel {channel}: {exc.message}"], details, ""
        inbox_id = str(self.settings.get("inbox_id") or "")
        inboxes = {str(i.get("id")): i.get("name") for i in self.admin_client.inboxes()}
        if inbox_id not in inboxes:
            problems.append(f"inbox {inbox_id!r} does not exist (have: {', '.join(sorted(inboxes)) or 'none'})")
        accounts = [a for a in self.admin_client.channel_accounts(channel)
                    if str(a.get("inboxId")) == inbox_id and not a.get("archived")]
        details.update(inbox=inboxes.get(inbox_id), channel_accounts=len(accounts))
        note = (f"; custom channel {info.get('name') or channel} bound to inbox {inboxes.get(inbox_id)!r}, "
                f"{len(accounts)} WhatsApp number(s) connected (more are connected with their first message)")
        return problems, details, note

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
                           "scope": " ".join(OAUTH_SCOPES + (INBOX_SCOPES if self.mode != inbox.MODE_TIMELINE else ())),
                           "optional_scope": " ".join(OAUTH_OPTIONAL_SCOPES),
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
        inbox_note = ""
        if self.mode != inbox.MODE_TIMELINE:
            try:
                more, inbox_details, inbox_note = self._check_inbox()
            except AuthFailed as exc:
                more, inbox_details = [f"the inbox needs the conversations scopes: {self.auth_problem(exc)}"], {}
            except (Unavailable, HubSpotError) as exc:
                more, inbox_details = [f"the inbox could not be checked: {exc}"], {}
            problems.extend(more)
            details_out.update(inbox_details)
        if problems:
            return CheckResult(False, "; ".join(problems), details_out)
        self._flagged_unhealthy = False
        return CheckResult(True, f"Connected to HubSpot account {details.get('portalId')}: pipeline "
                                 f"{pipeline!r}, {len(owners)} owners"
                                 + (f", created {', '.join(created)}" if created else "") + inbox_note,
                           details_out)

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
        inboxes: list[tuple[str, str]] = []
        if self.mode != inbox.MODE_TIMELINE or self.settings.get("inbox_id"):
            try:
                inboxes = [(str(i["id"]), str(i.get("name") or i["id"])) for i in self.admin_client.inboxes()]
            except (HubSpotError, Unavailable):
                inboxes = []  # the scope may be missing: the field stays free text
        return {
            "inbox_id": inboxes,
            "pipeline_id": [(p["id"], p["label"]) for p in pipelines],
            "stage_id": stage_choices,
            "closed_stage_id": [("", "(leave the deal where it is)")] + stage_choices,
            "default_owner_id": [("", "(none)")] + owner_choices,
            "owner_map": owner_choices,
        }

    # -- from HubSpot -------------------------------------------------------------------------
    def handle_webhook(self, request: InboundRequest) -> list[Command]:
        uri = self.settings.get("webhook_url") or request.url
        if inbox_hooks.is_inbox_hook(request.body):
            if self.settings.get("webhook_url") and request.path.rstrip("/").endswith("/inbox"):
                uri = self.settings["webhook_url"].rstrip("/") + "/inbox"
            return self._inbox_hook(request, uri if self.settings.get("webhook_url") else request.url)
        try:
            signature.verify(self.settings.get("client_secret") or "", request.method, uri, request.body,
                             request.headers, self.ctx.clock())
        except signature.BadSignature as exc:
            raise WebhookRejected(401, f"HubSpot signature refused: {exc}") from None
        try:
            changes = webhooks.stage_changes(request.body)
            handed_over = webhooks.owner_changes(request.body)
        except webhooks.PayloadError as exc:
            raise WebhookRejected(400, str(exc)) from None
        stage_rules = rules.parse_rules(self.settings.get("stage_rules") or [])
        try:
            return (list(webhooks.commands_for(changes, stage_rules, self.admin_client, self.settings))
                    + webhooks.owner_commands(handed_over, self.admin_client, self.ctx.links, self.owners,
                                              self.settings))
        except (Unavailable, HubSpotError) as exc:
            # 5xx makes HubSpot retry the delivery later.
            raise WebhookRejected(503, f"could not read the deal from HubSpot: {exc}") from None


    # -- from the Conversations inbox --------------------------------------------------------------
    def _inbox_hook(self, request: InboundRequest, uri: str) -> list[Command]:
        try:
            signature.verify(self.settings.get("client_secret") or "", request.method, uri, request.body,
                             request.headers, self.ctx.clock())
        except signature.BadSignature as exc:
            raise WebhookRejected(401, f"HubSpot signature refused: {exc}") from None
        message = inbox_hooks.parse(request.body)
        if message is None:
            return []
        problem = whatsapp_words.not_sendable(message.conversation_id, message.text, thread="thread")
        if problem:
            log.warning("HubSpot inbox message %s not sent: %s", message.message_id, problem)
            self._report_failed(message.message_id, problem)
            return []
        return [inbox_hooks.command(message)]

    def commands_done(self, commands: list[Command], results: list[dict[str, Any]]) -> None:
        """An agent's message the hub refused (window closed, opted out, ...) is marked
        FAILED in the HubSpot thread with the reason and what to do."""
        for message_id, result in inbox_hooks.refusals(commands, results):
            self._report_failed(message_id, whatsapp_words.refusal_text(result))

    def _report_failed(self, message_id: str, text: str) -> None:
        channel = str(self.settings.get("custom_channel_id") or "")
        if not channel:
            return
        try:
            self.admin_client.update_message_status(channel, message_id, {"statusType": "FAILED", "errorMessage": text})
        except (HubSpotError, Unavailable) as exc:
            log.warning("could not mark HubSpot message %s failed: %s", message_id, exc)


__all__ = ["HubSpotConnector", "mapping"]
