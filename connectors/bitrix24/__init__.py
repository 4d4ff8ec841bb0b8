"""Bitrix24: WhatsApp conversations as contacts, deals (or leads) and timeline comments."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

from connectors.base import CheckResult, Command, Connector, HubEvent, InboundRequest, Outcome
from connectors.contact_updates import TYPE as CONTACT_UPDATED
from connectors.bitrix24 import merges, openlines
from connectors.bitrix24.contact_updates import ContactUpdates
from connectors.bitrix24 import preview as preview_module
from connectors.bitrix24 import webhooks
from connectors.automation_notes import with_automation_notes
from connectors.broadcast_notes import with_broadcast_notes
from connectors.bitrix24.client import Bitrix24Client
from connectors.bitrix24.errors import AuthFailed, Bitrix24Error
from connectors.bitrix24.mapping import Options
from connectors.bitrix24.settings import Bitrix24Settings
from connectors.bitrix24.stages import Stages, resolve
from connectors.bitrix24.sync import HANDLED, WaveSync

log = logging.getLogger(__name__)


def _worse(timeline: Outcome, chat: Outcome | None) -> Outcome:
    """One outcome for an event both modes handled: what still has to happen wins (both
    halves are idempotent, so a retry repeats nothing already done)."""
    if chat is None or chat.status == "done":
        return timeline if chat is None or timeline.status != "done" else Outcome.done(
            {**(timeline.response or {}), **(chat.response or {})} or None)
    if timeline.status == "done":
        return chat
    rank = {"wait": 0, "retry": 1, "dead": 2}
    return chat if rank[chat.status] <= rank[timeline.status] else timeline


class Bitrix24Connector(Connector):
    kind = "bitrix24"
    title = "Bitrix24"
    Settings = Bitrix24Settings
    handles = HANDLED | openlines.HANDLED | merges.TYPES | {"broadcast.recipient", CONTACT_UPDATED}
    # A `batch` request carries 50 commands and a wave holds one event per conversation.
    # With a few events waiting per conversation, 1000 events make waves of a few
    # hundred: the contact lookups of a whole wave share one request (20 phones a
    # command, 1000 a request) and each wave's writes fill whole batches of 50 instead of
    # leaving a part-filled one every wave (250 made waves of ~62: 50 + 12).
    claim_size = 1000
    scratch_links = frozenset({"bitrix24.try", "bitrix24.contact_claim", "bitrix24.stage_rule",
                               openlines.TRY_MARKER})

    def __init__(self, ctx):
        super().__init__(ctx)
        self.options = Options.from_settings(self.settings)
        self.client = Bitrix24Client(
            self.settings, http=ctx.http, clock=ctx.clock, limiter=ctx.limiter,
            update_settings=ctx.update_settings, timeout=ctx.http_timeout,
        )
        self._unhealthy = False
        self.mode = str(self.settings.get("mode") or "timeline")
        self.openlines = openlines.OpenLines(self.client, ctx.links, self.settings, ctx.clock)

    def _mark(self, ok: bool, message: str) -> None:
        if self.ctx.mark_health is not None and (not ok or self._unhealthy):
            self.ctx.mark_health(ok, message)
        self._unhealthy = not ok

    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        if self.mode == "timeline":
            outcomes = self._timeline(batch)
        else:
            chat = self.openlines.deliver([e for e in batch if e.type in openlines.HANDLED])
            timeline = self._timeline(batch) if self.mode == "both" else [Outcome.done() for _ in batch]
            outcomes = [_worse(t, chat.get(e.id)) for e, t in zip(batch, timeline)]
            # Credentials refused, or the open line switched off: shown on the connector.
            stuck = next((o for o in outcomes if o.status == "wait" or openlines.NOT_ACTIVE_HINT in o.error), None)
            if stuck is not None:
                self._mark(False, stuck.error)
                return outcomes
        if self._unhealthy and not any(o.status == "wait" for o in outcomes):
            self._mark(True, "Bitrix24 accepts the connector's credentials again" if self.mode == "timeline"
                       else "Bitrix24 accepts the connector's requests again")
        return outcomes

    def _timeline(self, batch: list[HubEvent]) -> list[Outcome]:
        if any(e.type == CONTACT_UPDATED for e in batch):  # a new name or phone, before the rest
            applied = iter(ContactUpdates(self.client, self.ctx.links, self.ctx.clock).deliver(
                [e for e in batch if e.type == CONTACT_UPDATED]))
            others = [e for e in batch if e.type != CONTACT_UPDATED]
            rest = iter(self._timeline(others) if others else [])
            return [next(applied) if e.type == CONTACT_UPDATED else next(rest) for e in batch]
        if any(e.type in merges.TYPES for e in batch):  # a contact linked to a person, or unlinked
            folded = iter(merges.PersonMerges(self.client, self.ctx.links, self.options, self.ctx.clock).deliver(
                [e for e in batch if e.type in merges.TYPES]))
            others = [e for e in batch if e.type not in merges.TYPES]
            rest = iter(self._timeline(others) if others else [])
            return [next(folded) if e.type in merges.TYPES else next(rest) for e in batch]
        stages = Stages(str(self.settings.get("portal_url") or ""), self.client.list_all, self.ctx.clock,
                        target=self.options.target, category_id=self.options.category_id)
        try:
            batch, skipped = resolve(batch, stages)
        except Bitrix24Error as exc:  # the whole batch again later: order holds per conversation
            message = f"reading the pipelines and stages for a stage move: {exc.summary()}"
            if isinstance(exc, AuthFailed):
                self._mark(False, message)
                return [Outcome.wait(message) for _ in batch]
            return [Outcome.retry(message, retry_at=getattr(exc, "retry_at", None)) for _ in batch]
        rest = [e for i, e in enumerate(batch) if i not in skipped]
        sync = WaveSync(self.client, self.ctx.links, self.options, self.ctx.clock)
        done = iter(sync.run(with_automation_notes(with_broadcast_notes(rest)),
                             on_auth=lambda message: self._mark(False, message)) if rest else [])
        return [Outcome.done({"skipped": skipped[i]}) if i in skipped else next(done) for i in range(len(batch))]

    # -- admin ------------------------------------------------------------------------
    def _stage_entity(self) -> str:
        if self.options.target == "lead":
            return "STATUS"
        return "DEAL_STAGE" if not self.options.category_id else f"DEAL_STAGE_{self.options.category_id}"

    @staticmethod
    def link_url(settings: dict[str, Any], crm_type: str, crm_id: str) -> str | None:
        """Bitrix24 opens a record at <portal>/crm/<deal|lead|contact>/details/<id>/."""
        base = str(settings.get("portal_url") or "").rstrip("/")
        if crm_type not in ("deal", "lead", "contact") or not base or not crm_id.isdigit():
            return None
        return f"{base}/crm/{crm_type}/details/{crm_id}/"

    # -- OAuth: the Connect with Bitrix24 button ------------------------------------------
    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """The portal's authorization page for the app (OAuth mode only). The portal sends
        the browser to the redirect URL set in the app's settings: the hub's callback."""
        if self.settings.get("auth_mode") != "oauth" or not self.settings.get("client_id"):
            return None
        portal = str(self.settings["portal_url"]).rstrip("/")
        return f"{portal}/oauth/authorize/?{urlencode({'client_id': self.settings['client_id'], 'state': state})}"

    def accept_authorization(self, params: dict[str, str], redirect_uri: str) -> dict[str, Any]:
        """The code from the portal's redirect; `domain` names the portal that granted it."""
        if params.get("error"):
            raise ValueError(f"Bitrix24 did not grant access ({params['error']})")
        if not params.get("code"):
            raise ValueError("Bitrix24's redirect carried no authorization code")
        ours = urlsplit(str(self.settings["portal_url"])).netloc.lower()
        granted = (params.get("domain") or "").lower()
        if granted and ours and granted != ours:
            raise ValueError(f"access was granted by portal {granted!r}, but this connector works with {ours!r}")
        return {"authorization_code": params["code"]}

    def check(self) -> CheckResult:
        crm = self._check_crm()
        if self.mode == "timeline":
            return crm
        chat = self.openlines.connect(self.ctx.webhook_url)
        details = {**crm.details, **chat.details}
        return CheckResult(crm.ok and chat.ok, f"{crm.message}. {chat.message}", details)

    def _check_crm(self) -> CheckResult:
        try:
            answer = self.client.batch([
                ("profile", "profile", {}),
                ("categories", "crm.category.list", {"entityTypeId": 2}),
                ("stages", "crm.status.list", {"filter": {"ENTITY_ID": self._stage_entity()}}),
            ])
        except Bitrix24Error as exc:
            return CheckResult(False, f"Bitrix24 did not accept the request: {exc.summary()}")
        if answer.errors:
            key, err = next(iter(answer.errors.items()))
            return CheckResult(False, f"{key}: {err.summary()}")
        user = answer.results.get("profile") or {}
        stages = {str(s.get("STATUS_ID")): s.get("NAME") for s in answer.results.get("stages") or []}
        problems = []
        if self.options.target == "deal":
            categories = {int(c.get("id")): c.get("name") for c in
                          (answer.results.get("categories") or {}).get("categories", [])}
            categories.setdefault(0, "General")
            if self.options.category_id not in categories:
                problems.append(f"pipeline {self.options.category_id} does not exist")
        wanted = [self.options.stage_id if self.options.target == "deal" else self.options.lead_status_id,
                  self.options.close_stage_id]
        problems += [f"stage {s} is not in {self._stage_entity()}" for s in wanted if s and s not in stages]
        who = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip() or f"user {user.get('ID')}"
        if problems:
            return CheckResult(False, "Connected as " + who + ", but " + "; ".join(problems),
                               {"stages": sorted(stages)})
        return CheckResult(True, f"Connected to {self.settings['portal_url']} as {who}",
                           {"stages": sorted(stages), "user_id": user.get("ID")})

    def choices(self) -> dict[str, list[tuple[str, str]]]:
        answer = self.client.batch([
            ("categories", "crm.category.list", {"entityTypeId": 2}),
            ("stages", "crm.status.list", {"filter": {"ENTITY_ID": self._stage_entity() if self.options.target == "deal"
                                                       else "DEAL_STAGE"}}),
            ("statuses", "crm.status.list", {"filter": {"ENTITY_ID": "STATUS"}}),
            ("sources", "crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}}),
            ("users", "user.get", {"FILTER": {"ACTIVE": "Y"}}),
            ("lines", "imopenlines.config.list.get", {"PARAMS": {"select": ["ID", "LINE_NAME", "ACTIVE"],
                                                                 "order": {"ID": "ASC"}, "limit": 200}}),
        ])

        def pairs(rows: Any, key: str = "STATUS_ID", label: str = "NAME") -> list[tuple[str, str]]:
            return [(str(r.get(key)), str(r.get(label))) for r in rows or []]

        categories = (answer.results.get("categories") or {}).get("categories", [])
        stages = pairs(answer.results.get("stages"))
        statuses = pairs(answer.results.get("statuses"))
        users = [(str(u.get("ID")), " ".join(filter(None, [u.get("NAME"), u.get("LAST_NAME")])) or str(u.get("EMAIL")))
                 for u in answer.results.get("users") or []]
        return {
            "deal_category_id": [(str(c.get("id")), str(c.get("name"))) for c in categories],
            "deal_stage_id": stages,
            "lead_status_id": statuses,
            "close_stage_id": stages if self.options.target == "deal" else statuses,
            "source_id": pairs(answer.results.get("sources")),
            "default_assigned_by_id": users,
            "openlines_line_id": [(str(r.get("ID")), f"{r.get('LINE_NAME')}" + ("" if r.get("ACTIVE") == "Y"
                                                                                 else " (inactive)"))
                                  for r in answer.results.get("lines") or [] if isinstance(r, dict)],
        }

    def preview(self, batch: list[HubEvent]) -> list[dict[str, Any]]:
        return preview_module.requests_for(batch, links=self.ctx.links, options=self.options)

    def pull(self, since: datetime) -> list[Command]:
        """Stage rules for deals (leads) that moved since then: what a missed event would
        have done (Bitrix24 does not repeat an event the hub did not take)."""
        if not self.options.stage_rules and not self.options.report_stages:
            return []
        stamp = since.astimezone(timezone.utc).isoformat(timespec="seconds")
        return list(webhooks.pulled_commands(stamp, client=self.client, links=self.ctx.links, options=self.options))

    def handle_webhook(self, request: InboundRequest) -> list[Command]:
        body = webhooks.parse_body(request)
        if request.path.rstrip("/").endswith("/placement") and body.get("PLACEMENT"):
            return []  # the connector's settings slider in Open Lines: nothing to set there
        webhooks.authenticate(body, str(self.settings.get("application_token") or ""))
        if str(body.get("event") or "").upper() == openlines.EVENT:
            if self.mode == "timeline":
                return []
            return self.openlines.commands_for(body)
        return list(webhooks.commands_for(body, client=self.client, links=self.ctx.links, options=self.options))

    def commands_done(self, commands: list[Command], results: list[dict[str, Any]]) -> None:
        if self.mode != "timeline":
            self.openlines.commands_done(commands, results)
