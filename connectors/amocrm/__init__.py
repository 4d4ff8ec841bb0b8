"""amoCRM / Kommo: WhatsApp chats become contacts, deals and timelines in amoCRM.

The connector class wires the pieces: settings.py (the form), oauth.py (token rotation
under the hub's lock), client.py (rate limit, retries, errors), leads.py and sync.py
(what each wave of events becomes), webhooks.py and rules.py (amoCRM -> hub commands).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from connectors import whatsapp_words
from connectors.amocrm import chat, chat_hooks, errors, mapping, preview, rules, webhooks
from connectors.broadcast_notes import with_broadcast_notes
from connectors.amocrm.amojo import AmojoClient
from connectors.amocrm.client import AmoClient
from connectors.amocrm.leads import LEAD_REVERSE, RESPONSIBLE
from connectors.amocrm.oauth import TokenKeeper
from connectors.amocrm.settings import AmoCrmSettings, subdomain_of
from connectors.amocrm.sync import HANDLED, WaveSync
from connectors.base import (
    AssignConversation, CheckResult, Command, Connector, ConnectorContext, HubEvent, InboundRequest, Outcome,
    SendTemplate, SendText, WebhookRejected,
)

log = logging.getLogger(__name__)

AUTH_WAIT_SECONDS = 300  # deliveries wait this long between checks while credentials are bad
BLOCKED_WAIT_SECONDS = 300
WEBHOOK_SEEN = "amo_webhook"
# The health this process last reported per connector. The hub rebuilds connector
# instances whenever the connector row changes (and reporting health changes it), so this
# cannot live on the instance.
_REPORTED: dict[int, str | None] = {}


class AmoCrmConnector(Connector):
    kind = "amocrm"
    title = "amoCRM / Kommo"
    Settings = AmoCrmSettings
    handles = HANDLED | chat.CHAT_TYPES | {"broadcast.recipient"}
    # leads/complex and notes take 50 items; claim enough that each wave can fill them.
    claim_size = 200
    scratch_links = frozenset({"lead_intent", "note_intent", "amo_webhook"})

    def __init__(self, ctx: ConnectorContext):
        super().__init__(ctx)
        self.base_url = self.settings["base_url"].rstrip("/")
        rate = float(self.settings.get("requests_per_second") or 7.0)
        self.limiter = ctx.limiter("api", rate, 1.0) if ctx.limiter else None
        self.tokens = TokenKeeper(
            self.settings, http=ctx.http, clock=ctx.clock,
            timeout=float(self.settings.get("timeout_seconds") or ctx.http_timeout),
            update_settings=ctx.update_settings,
            before_request=self.limiter.take if self.limiter else (lambda: None),
            on_renewed=lambda message: self._health(True, message),
        )
        self.client = AmoClient(
            base_url=self.base_url, http=ctx.http, tokens=self.tokens, limiter=self.limiter,
            clock=ctx.clock, timeout=float(self.settings.get("timeout_seconds") or ctx.http_timeout),
        )
        self._parsed_rules: list[rules.Rule] | None = None
        self.mode = self.settings.get("mode") or "notes"
        self.amojo: AmojoClient | None = None
        if self.mode != "notes" and self.settings.get("chat_channel_id") and self.settings.get("chat_channel_secret"):
            chat_limiter = ctx.limiter("amojo", rate, 1.0) if ctx.limiter else None
            self.amojo = AmojoClient(
                base_url=str(self.settings.get("amojo_base_url") or "https://amojo.amocrm.ru"),
                channel_id=str(self.settings["chat_channel_id"]).strip(),
                secret=str(self.settings["chat_channel_secret"]), http=ctx.http, clock=ctx.clock,
                timeout=float(self.settings.get("timeout_seconds") or ctx.http_timeout),
                before_request=chat_limiter.take if chat_limiter else (lambda: None))

    # -- health and failures ---------------------------------------------------------------
    @property
    def _unhealthy(self) -> str | None:
        return _REPORTED.get(self.ctx.connector_id)

    def _health(self, ok: bool, message: str) -> None:
        """Report health changes only: every report rewrites the connector row."""
        if self.ctx.mark_health is None:
            return
        if not ok and self._unhealthy == message:
            return  # already said
        self.ctx.mark_health(ok, message)
        _REPORTED[self.ctx.connector_id] = None if ok else message

    def _failure(self, exc: errors.AmoError) -> Outcome:
        now = self.ctx.clock()
        if isinstance(exc, (errors.AuthProblem, errors.ConfigurationError)):
            self._health(False, exc.message)
            return Outcome.wait(exc.message, retry_at=now + timedelta(seconds=AUTH_WAIT_SECONDS))
        if isinstance(exc, errors.AccountBlocked):
            self._health(False, exc.message)
            return Outcome.wait(exc.message, retry_at=now + timedelta(seconds=BLOCKED_WAIT_SECONDS))
        if isinstance(exc, errors.Transient):
            return Outcome.retry(exc.message, retry_at=exc.retry_at, response=exc.response)
        return Outcome.dead(exc.message, response=exc.response)

    # -- the contract -------------------------------------------------------------------------
    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        outcomes: list[Outcome] | None = None
        if self.mode in ("chat", "both"):
            if self.amojo is None:
                wait = Outcome.wait("chat mode needs the chat channel id and secret",
                                    retry_at=self.ctx.clock() + timedelta(seconds=AUTH_WAIT_SECONDS))
                return [wait for _ in batch]
            outcomes = chat.ChatSync(self.amojo, self.ctx.links, scope=self._chat_scope,
                                     reconnect=lambda: self._connect_chat(), failure=self._failure).run(batch)
        if self.mode in ("notes", "both"):
            sync = WaveSync(self.client, self.ctx.links, self.settings,
                            now=lambda: self.ctx.clock().timestamp(), failure=self._failure)
            notes = sync.run(with_broadcast_notes(batch))
            # an event is done when both are; a retry repeats only what is not stored yet
            outcomes = notes if outcomes is None else [c if c.status != "done" else n
                                                       for c, n in zip(outcomes, notes)]
        assert outcomes is not None
        made = self.client.requests_made + (self.amojo.requests_made if self.amojo else 0)
        if self._unhealthy and any(o.status == "done" for o in outcomes) and made:
            self._health(True, "connected to amoCRM (syncing again)")
        return outcomes

    # -- the chat channel (amojo) ------------------------------------------------------------
    def _chat_scope(self) -> str:
        return str(self.settings.get("chat_scope_id") or "") or self._connect_chat()

    def _amojo_account_id(self) -> str:
        known = str(self.settings.get("amojo_account_id") or "").strip()
        if known:
            return known
        account = self.client.get("/api/v4/account", {"with": "amojo_id"}) or {}
        amojo_id = str(account.get("amojo_id") or "")
        if not amojo_id:
            raise errors.ConfigurationError("amoCRM did not give the account's amojo_id; enter it in the settings")
        return amojo_id

    def _connect_chat(self) -> str:
        """Connect the channel to the account (after every install, amoCRM says) and keep
        the scope_id in the connector's settings."""
        assert self.amojo is not None
        account_id = self._amojo_account_id()
        answer = self.amojo.connect(account_id, str(self.settings.get("chat_title") or "WhatsApp"))
        scope = str(answer["scope_id"])
        changes = {"chat_scope_id": scope, "amojo_account_id": account_id}
        if self.ctx.update_settings is not None:
            self.ctx.update_settings(lambda fresh: changes if any(fresh.get(k) != v for k, v in changes.items())
                                     else None)
        self.settings.update(changes)
        log.info("amoCRM chat channel connected (scope %s)", scope)
        return scope

    @staticmethod
    def link_url(settings: dict[str, Any], crm_type: str, crm_id: str) -> str | None:
        """amoCRM opens a record at <account>/leads/detail/<id> (contacts likewise)."""
        section = {"lead": "leads", "contact": "contacts"}.get(crm_type)
        base = str(settings.get("base_url") or "").rstrip("/")
        return f"{base}/{section}/detail/{crm_id}" if section and base and crm_id.isdigit() else None

    # -- OAuth: the Connect with amoCRM button ----------------------------------------------
    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """amoCRM's authorization page for this integration; None without OAuth settings.
        amoCRM sends the browser to the redirect URI registered with the integration (not
        one given here): it must be the hub's callback."""
        if not (self.settings.get("client_id") and self.settings.get("client_secret")):
            return None
        page = self.settings.get("authorize_url") or (
            "https://www.kommo.com/oauth" if self.base_url.endswith(".kommo.com") else "https://www.amocrm.ru/oauth")
        return f"{page}?{urlencode({'client_id': self.settings['client_id'], 'state': state, 'mode': 'popup'})}"

    def accept_authorization(self, params: dict[str, str], redirect_uri: str) -> dict[str, Any]:
        """The code from amoCRM's redirect, for the next check() to exchange; the redirect
        URI it came to (the exchange must name it). `referer` names the account the user
        granted access to: it must be this connector's account."""
        if params.get("error"):
            raise ValueError(f"amoCRM did not grant access ({params['error']})")
        if not params.get("code"):
            raise ValueError("amoCRM's redirect carried no authorization code")
        expected = subdomain_of(self.base_url)
        granted = (params.get("referer") or "").split(".")[0].lower()
        if expected and granted and granted != expected:
            raise ValueError(f"access was granted for account {granted!r}, but this connector works with "
                             f"{expected!r}: choose that account on amoCRM's page")
        return {"authorization_code": params["code"], "redirect_uri": redirect_uri}

    def check(self) -> CheckResult:
        try:
            account = self.client.get("/api/v4/account") or {}
            pipelines = self._pipelines()
            lead_fields = self.client.collect("/api/v4/leads/custom_fields", "custom_fields")
            users = self.client.collect("/api/v4/users", "users")
        except errors.AmoError as exc:
            return CheckResult(False, exc.message, {"response": exc.response})
        problems = self._setting_problems(pipelines, lead_fields, users)
        details = {"account": {k: account.get(k) for k in ("id", "name", "subdomain")},
                   "pipelines": len(pipelines), "users": len(users)}
        if problems:
            return CheckResult(False, "; ".join(problems), details)
        expected = subdomain_of(self.base_url)
        if expected and account.get("subdomain") and account["subdomain"] != expected:
            return CheckResult(False, f"the token belongs to account {account['subdomain']!r}, "
                                      f"not {expected!r}", details)
        try:
            subscribed = self._ensure_webhook()
        except errors.AmoError as exc:
            return CheckResult(False, f"connected, but the amoCRM webhook could not be set up: {exc.message}",
                               details)
        chat_note = ""
        if self.mode in ("chat", "both"):
            if self.amojo is None:
                return CheckResult(False, "chat mode needs the chat channel id and secret", details)
            try:
                details["chat_scope_id"] = self._connect_chat()
            except errors.AmoError as exc:
                return CheckResult(False, f"connected to amoCRM, but the chat channel could not be connected: "
                                          f"{exc.message}", details)
            chat_note = "; chat channel connected"
        return CheckResult(True, f"connected to amoCRM account {account.get('name') or account.get('subdomain')!r}"
                           + (f"; {subscribed}" if subscribed else "") + chat_note, details)

    def _ensure_webhook(self) -> str | None:
        """Stage rules need amoCRM to call this connector's URL on lead status changes, an
        operator map on responsible-user changes: subscribe it, and enable it again after amoCRM switched it off (it does so to an
        address that keeps failing). Note replies stay opt-in: every note the hub itself
        writes would come back, so `note_lead` is kept where the admin subscribed it but
        never added here. Returns what was done, if anything."""
        url = self.ctx.webhook_url
        if not url:
            return None
        wanted = {"status_lead"} if self._rules() or self.settings.get("report_deal_stages") else set()
        if self.settings.get("operator_users"):
            wanted.add("responsible_lead")  # a manager's hand-over follows into the hub
        hooks = self.client.collect("/api/v4/webhooks", "webhooks")
        ours = next((h for h in hooks if h.get("destination") == url), None)
        if ours is None and not wanted:
            return None
        if ours is not None and not ours.get("disabled") and wanted <= set(ours.get("settings") or []):
            return None
        events = sorted(wanted | set((ours or {}).get("settings") or []))
        self.client.post("/api/v4/webhooks", {"destination": url, "settings": events})
        done = "enabled again" if ours is not None and ours.get("disabled") else "subscribed"
        return f"amoCRM webhook {done} for {', '.join(events)}"

    def _pipelines(self) -> list[dict[str, Any]]:
        body = self.client.get("/api/v4/leads/pipelines") or {}
        return mapping.embedded(body, "pipelines")

    def _setting_problems(self, pipelines: list[dict[str, Any]], lead_fields: list[dict[str, Any]],
                          users: list[dict[str, Any]]) -> list[str]:
        problems = []
        by_id = {int(p["id"]): p for p in pipelines}
        pipeline_id = self.settings.get("pipeline_id")
        statuses: set[int] = set()
        if pipeline_id:
            pipeline = by_id.get(int(pipeline_id))
            if pipeline is None:
                problems.append(f"pipeline {pipeline_id} does not exist in amoCRM")
            else:
                statuses = {int(s["id"]) for s in mapping.embedded(pipeline, "statuses")}
        for name in ("status_id", "close_status_id"):
            value = self.settings.get(name)
            if value and statuses and int(value) not in statuses:
                problems.append(f"{name}: stage {value} is not in pipeline {pipeline_id}")
        codes = {str(f.get("code") or "").upper() for f in lead_fields} | {str(f["id"]) for f in lead_fields}
        for key, ref in (self.settings.get("source_fields") or {}).items():
            if str(ref).upper() not in codes:
                problems.append(f"source_fields: {key} -> {ref}: no such deal field in amoCRM")
        user_ids = {int(u["id"]) for u in users}
        wanted = dict((self.settings.get("operator_users") or {}))
        if self.settings.get("responsible_user_id"):
            wanted["responsible_user_id"] = self.settings["responsible_user_id"]
        for who, uid in wanted.items():
            if int(uid) not in user_ids:
                problems.append(f"{who}: amoCRM has no user {uid}")
        return problems

    def choices(self) -> dict[str, list[tuple[str, str]]]:
        pipelines = self._pipelines()
        users = self.client.collect("/api/v4/users", "users")
        lead_fields = self.client.collect("/api/v4/leads/custom_fields", "custom_fields")
        stages = [(str(s["id"]), f"{p['name']} / {s['name']}")
                  for p in pipelines for s in mapping.embedded(p, "statuses")]
        user_choices = [(str(u["id"]), f"{u.get('name')} <{u.get('email')}>") for u in users]
        return {
            "pipeline_id": [(str(p["id"]), p["name"]) for p in pipelines],
            "status_id": stages,
            "close_status_id": stages,
            "responsible_user_id": user_choices,
            "operator_users": user_choices,
            "source_fields": [(str(f.get("code") or f["id"]), f.get("name") or "") for f in lead_fields],
        }

    def preview(self, batch: list[HubEvent]) -> list[dict[str, Any]]:
        return preview.plan(batch, self.ctx.links, self.settings)

    # -- from amoCRM ---------------------------------------------------------------------------
    def _rules(self) -> list[rules.Rule]:
        if self._parsed_rules is None:
            self._parsed_rules = rules.parse_rules(
                [r for r in self.settings.get("stage_rules") or [] if r.strip()])
        return self._parsed_rules

    def handle_webhook(self, request: InboundRequest) -> list[Command]:
        if chat_hooks.is_chat_hook(request):
            return self._chat_hook(request)
        payload = webhooks.parse(request)
        expected = subdomain_of(self.base_url)
        if expected and payload.subdomain.lower() != expected:
            raise WebhookRejected(403, f"webhook from amoCRM account {payload.subdomain!r}; "
                                       f"this connector is for {expected!r}")
        commands: list[Command] = []
        try:
            for change in payload.status_changes:
                commands.extend(self._status_commands(change))
                commands.extend(self._stage_report(change))
            for note in payload.notes:
                command = self._reply_command(note)
                if command is not None:
                    commands.append(command)
            commands.extend(self._responsible_commands(payload.responsibles))
        except errors.AmoError as exc:
            # amoCRM repeats a webhook answered with an error; what was done is remembered.
            raise WebhookRejected(503, f"could not read from amoCRM ({exc.message}); "
                                       f"amoCRM will send the webhook again") from None
        return commands

    def _first_time(self, key: str) -> bool:
        marker = f"{self.ctx.clock().timestamp():.6f}"
        return self.ctx.links.put(WEBHOOK_SEEN, key[:64], "seen", marker) == marker

    def _status_commands(self, change: webhooks.StatusChange) -> list[Command]:
        matched = webhooks.matching_rules(change, self._rules())
        if not matched:
            return []
        conv = self.ctx.links.get(LEAD_REVERSE, str(change.lead_id))
        wants_contact = conv is None or any(r.needs_contact() for r in matched)
        missing_field = any(a.expr.source == "lead" and a.expr.attr == "field"
                            and not rules.field_value(change.lead.get("fields") or {}, a.expr.key or "")
                            for r in matched for a in r.args)
        api_lead = None
        if wants_contact or missing_field:  # the webhook's copy of the deal is not enough
            api_lead = self.client.get(f"/api/v4/leads/{change.lead_id}", {"with": "contacts"})
        lead = webhooks.merge_lead(change.lead, api_lead)
        contact_view = None
        contact_id = mapping.main_contact_id(api_lead or {})
        if contact_id and wants_contact:
            contact_view = mapping.contact_view(self.client.get(f"/api/v4/contacts/{contact_id}") or {})
        phone = (contact_view or {}).get("phone") or None
        if conv is None and not phone:
            log.warning("deal %s entered stage %s but has no WhatsApp conversation or contact phone",
                        change.lead_id, change.status_id)
            return []
        out: list[Command] = []
        for rule in matched:
            try:
                variables = rules.variables(rule, lead, contact_view)
            except rules.MissingValue as exc:
                log.warning("rule %r not applied: %s", rule.text, exc)
                continue
            out.append(SendTemplate(
                template=rule.template, language=rule.language, variables=variables,
                conversation_id=int(conv) if conv else None, phone=None if conv else phone,
                reason=f"amoCRM deal {change.lead_id} entered stage {change.status_id}"))
        # Remembered only once everything was read: a webhook amoCRM repeats after an error
        # is handled then, one it repeats after success is not handled twice.
        if out and not self._first_time(f"status:{change.lead_id}:{change.status_id}:{change.modified_at}"):
            log.info("webhook for deal %s stage %s seen before; ignored", change.lead_id, change.status_id)
            return []
        return out

    def _stage_report(self, change: webhooks.StatusChange) -> list[Command]:
        """The deal's move for the analytics connectors (deal.stage_changed), once per
        entry into the stage: the hub keeps the key, so amoCRM's repeats change nothing."""
        if not self.settings.get("report_deal_stages"):
            return []
        if change.old_status_id is not None and change.old_status_id == change.status_id:
            return []
        conv = self.ctx.links.get(LEAD_REVERSE, str(change.lead_id))
        if conv is None:
            return []  # not a deal of the hub's conversations
        return [webhooks.stage_report(change, int(conv), self.settings.get("deal_currency") or "RUB")]

    def _responsible_commands(self, seen: list[webhooks.ResponsibleSeen]) -> list[Command]:
        """A responsible user a manager changed in amoCRM assigns the deal's chat to the
        operator mapped to that user. Each change once: the value seen is remembered like
        the hub's own writes, so amoCRM's webhook for the hub's write, its repeats and
        edits of other fields change nothing. A user with no operator leaves the chat."""
        operators = self.settings.get("operator_users") or {}
        if not operators or not seen:
            return []
        links = self.ctx.links
        convs = links.get_many(LEAD_REVERSE, [str(s.lead_id) for s in seen])
        known = links.get_many(RESPONSIBLE, [str(s.lead_id) for s in seen if str(s.lead_id) in convs])
        changed = [s for s in seen if str(s.lead_id) in convs and known.get(str(s.lead_id)) != str(s.user_id)]
        if not changed:
            return []
        links.set_many(RESPONSIBLE, [(str(s.lead_id), "user", str(s.user_id)) for s in changed])
        out: list[Command] = []
        for s in changed:
            email = webhooks.operator_email(s.user_id, operators)
            if email is None:
                log.info("amoCRM deal %s: responsible user %s is not mapped to a hub operator; the chat stays "
                         "as it is", s.lead_id, s.user_id)
                continue
            out.append(AssignConversation(conversation_id=int(convs[str(s.lead_id)]), assignee_email=email))
        return out

    def _reply_command(self, note: webhooks.NoteAdded) -> Command | None:
        text = webhooks.reply_text(note.text, self.settings.get("reply_prefix") or "")
        if text is None:
            return None
        conv = self.ctx.links.get(LEAD_REVERSE, str(note.lead_id))
        if conv is None:
            log.warning("reply note on deal %s: the deal has no WhatsApp conversation", note.lead_id)
            return None
        if note.note_id and not self._first_time(f"note:{note.note_id}"):
            return None
        return SendText(text=text, conversation_id=int(conv), author=note.author)

    # -- from the amoCRM chat ------------------------------------------------------------------
    def _chat_hook(self, request: InboundRequest) -> list[Command]:
        message = chat_hooks.parse(request, str(self.settings.get("chat_channel_secret") or ""),
                                   str(self.settings.get("amojo_account_id") or "") or None)
        problem = whatsapp_words.not_sendable(message.conversation_id, message.text, thread="chat")
        if problem:
            log.warning("amoCRM chat message %s not sent: %s", message.amojo_id, problem)
            self._report_error(message.amojo_id, problem)
            return []
        return [chat_hooks.command(message)]

    def commands_done(self, commands: list[Command], results: list[dict[str, Any]]) -> None:
        """A manager's message the hub refused (window closed, opted out, ...) is marked
        failed in the amoCRM chat with the reason and what to do."""
        for amojo_id, result in chat_hooks.refusals(commands, results):
            self._report_error(amojo_id, whatsapp_words.refusal_text(result))

    def _report_error(self, amojo_id: str, text: str) -> None:
        if self.amojo is None:
            return
        try:
            chat.ChatSync(self.amojo, self.ctx.links, scope=self._chat_scope, reconnect=self._connect_chat,
                          failure=self._failure)._call(
                lambda scope: self.amojo.delivery_status(scope, amojo_id, -1, 905, text))  # type: ignore[union-attr]
        except errors.AmoError as exc:
            log.warning("could not mark amoCRM chat message %s failed: %s", amojo_id, exc.message)
