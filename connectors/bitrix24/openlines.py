"""Open Lines mode: each WhatsApp conversation is a chat of a Bitrix24 open line (imconnector).

Set-up (Test connection): imconnector.register (the hub's connector, its icon, the hub's
hook as PLACEMENT_HANDLER), imconnector.activate on the chosen line, event.bind
OnImConnectorMessageAdd to the hub's hook, then imconnector.status - one batch, each hop
reported.

Inbound: every `message.received` goes out with imconnector.send.messages, up to
MESSAGES_PER_CALL a request; the answer's RESULT[i] belongs to MESSAGES[i]. The docs
say nothing of deduplication by message id, so each message first leaves a try marker;
a message whose marker is already there (a lost answer, a crash) is looked for in its
chat (im.dialog.messages.get, by the CONNECTOR_MID the portal keeps) before it is sent
again; a chat whose id the hub never heard is found by its user code (imopenlines.dialog.get)
or, for a contact never answered for, among the line's sessions (imopenlines.v2.Session.list).
The chat id of each answer is stored (conversation -> chat, message -> chat).

Outbound: ONIMCONNECTORMESSAGEADD -> SendText, once per Bitrix24 message id (the
idempotency key), its im chat and message ids as the crm_message link; the WhatsApp
`message.sent` / `message.status` of that message are reported back with
imconnector.send.status.delivery / .reading, a failure and a refusal (the 24-hour window,
naming the templates) as a system message in the chat (im.message.add SYSTEM=Y).
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

from connectors.base import (
    CheckResult, Command, HubEvent, LinkStore, Outcome, SendText, WebhookRejected,
)
from connectors.bitrix24.errors import AuthFailed, Bitrix24Error, MethodBlocked, MethodError
from connectors.bitrix24.openlines_mapping import (  # noqa: F401 - re-exported for readers and tests
    ICON, SIGNATURE, external_id, message_item, person_name, whatsapp_text, window_notice,
)

log = logging.getLogger(__name__)

EVENT = "ONIMCONNECTORMESSAGEADD"
HANDLED = frozenset({"message.received", "message.sent", "message.status"})
CHAT_LINK = "bitrix24.ol_chat"  # hub conversation id -> Bitrix24 chat id (session.CHAT_ID)
MESSAGE_LINK = "bitrix24.ol_msg"  # hub message id -> Bitrix24 chat id it was posted into
TRY_MARKER = "bitrix24.ol_try"  # hub message id -> the try that is sending it
USER_LINK = "bitrix24.ol_user"  # hub contact id -> the contact's Bitrix24 user (RESULT[].user)
NOTICE = "bitrix24.ol_notice"  # im message id of a system message the hub wrote -> "notice"
REPORTED = "bitrix24.ol_reported"  # "<hub message id>:<delivered|read|failed>" -> reported
CRM_MESSAGE = "crm_message"  # hub message id -> "<im chat id>:<im message id>" (hub/crm/commands.py)
KEY_PREFIX = "bitrix24.ol:"
MESSAGES_PER_CALL = 50  # no documented cap; a request the portal handles well within its time limit
NOT_ACTIVE = frozenset({"NOT_ACTIVE_LINE", "IMCONNECTOR_NO_CORRECT_PROVIDER"})
NOT_ACTIVE_HINT = "is not active on open line"
SESSION_LIST = "imopenlines.v2.Session.list"
SESSION_PAGE = 200  # the method's largest page
SESSION_OFFSET_MAX = 10000  # OFFSET_TOO_LARGE past it
SESSION_SPAN = timedelta(days=365)  # PERIOD_TOO_LARGE past 366 days
SESSION_MARGIN = timedelta(hours=1)  # the hub's clock and the portal's may differ


class Setup:
    """What the connector needs to know of its open line."""

    def __init__(self, settings: dict[str, Any]):
        self.connector = str(settings.get("openlines_connector_id") or "whatsapp_hub").lower()
        line = str(settings.get("openlines_line_id") or "")
        self.line = int(line) if line.isdigit() else 0


# -- the work ---------------------------------------------------------------------------
class OpenLines:
    def __init__(self, client: Any, links: LinkStore, settings: dict[str, Any], clock: Callable[[], datetime]):
        self.client = client
        self.links = links
        self.setup = Setup(settings)
        self.clock = clock
        self.nonce = uuid.uuid4().hex

    # ---- set-up --------------------------------------------------------------------------
    def connect(self, hook_url: str) -> CheckResult:
        s = self.setup
        if not hook_url:
            return CheckResult(False, "Open Lines: the hub's base_url is not configured, so Bitrix24 cannot be "
                                      "told where to send operators' replies", {"openlines": {}})
        # A request of its own, as JSON: its flags must arrive as booleans (inside a batch
        # they would become "Y"/"N" strings). NEED_SYSTEM_MESSAGES=false: the chat's system
        # messages - the hub's own notices among them - are not sent to WhatsApp.
        registered: Any = None
        register_error: Bitrix24Error | None = None
        try:
            registered = self.client.call("imconnector.register", {
                "ID": s.connector, "NAME": "WhatsApp (hub)",
                "ICON": {"DATA_IMAGE": ICON, "COLOR": "#25D366", "SIZE": "90%", "POSITION": "center"},
                "PLACEMENT_HANDLER": f"{hook_url}/placement", "NEED_SYSTEM_MESSAGES": False})
        except Bitrix24Error as exc:
            register_error = exc
        try:
            answer = self.client.batch([
                ("activate", "imconnector.activate", {"CONNECTOR": s.connector, "LINE": s.line, "ACTIVE": "1"}),
                ("bind", "event.bind", {"event": "OnImConnectorMessageAdd", "handler": hook_url}),
                ("status", "imconnector.status", {"CONNECTOR": s.connector, "LINE": s.line}),
            ])
        except Bitrix24Error as exc:
            return CheckResult(False, f"Open Lines: Bitrix24 did not accept the set-up: {exc.summary()}",
                               {"openlines": {}})
        hops: dict[str, str] = {}
        if isinstance(registered, dict) and registered.get("result"):
            hops["registered"] = f"connector {s.connector} registered"
        else:
            err = register_error
            why = err.summary() if err else f"{(registered or {}).get('error')}: {(registered or {}).get('error_description')}"
            hops["registered"] = f"not registered ({why})"
        status = answer.results.get("status") if isinstance(answer.results.get("status"), dict) else {}
        if answer.results.get("activate") and status.get("STATUS"):
            hops["line_active"] = f"active on open line {s.line}"
        else:
            err = answer.errors.get("activate") or answer.errors.get("status")
            hops["line_active"] = f"not active on open line {s.line} ({err.summary() if err else 'imconnector.status: ' + str(status)})"
        bind_err = answer.errors.get("bind")
        if "bind" in answer.results or (bind_err and bind_err.code == "ERROR_HANDLER_ALREADY_EXIST"):
            hops["event_bound"] = "OnImConnectorMessageAdd bound to the hub"
        else:
            hops["event_bound"] = f"OnImConnectorMessageAdd not bound ({bind_err.summary() if bind_err else 'no answer'})"
        ok = (hops["registered"].startswith("connector") and hops["line_active"].startswith("active")
              and hops["event_bound"].startswith("OnIm") and "not bound" not in hops["event_bound"])
        return CheckResult(ok, "Open Lines: " + "; ".join(hops.values()), {"openlines": hops})

    # ---- deliver -------------------------------------------------------------------------
    def deliver(self, events: list[HubEvent]) -> dict[str, Outcome]:
        # A try marker names one call of deliver: the worker may keep this instance, and a
        # retry by it must see its own earlier marker as an earlier try.
        self.nonce = uuid.uuid4().hex
        outcomes: dict[str, Outcome] = {}
        received = [e for e in events if e.type == "message.received"]
        statuses = [e for e in events if e.type in ("message.sent", "message.status")]
        if received:
            outcomes.update(self._send_inbound(received))
        if statuses:
            outcomes.update(self._report(statuses))
        return outcomes

    def _failure(self, exc: Bitrix24Error, method: str) -> Outcome:
        if isinstance(exc, AuthFailed):
            return Outcome.wait(f"Bitrix24 refused the connector's credentials ({exc.summary()}); reconnect the app")
        if isinstance(exc, MethodBlocked):
            return Outcome.retry(f"{method}: {exc.summary()}", retry_at=exc.retry_at)
        if isinstance(exc, MethodError) and exc.code in NOT_ACTIVE:
            return Outcome.retry(f"{method}: the connector {self.setup.connector} {NOT_ACTIVE_HINT} "
                                 f"{self.setup.line} ({exc.summary()}); press Test connection to set it up")
        if isinstance(exc, MethodError) and exc.code in ("WRONG_AUTH_TYPE",):
            return Outcome.wait(f"{method}: Open Lines need the OAuth app connection ({exc.summary()})")
        if isinstance(exc, MethodError):
            return Outcome.dead(f"Bitrix24 refused {method}: {exc.summary()}")
        return Outcome.retry(f"{method}: {exc.summary()}")

    def _send_inbound(self, events: list[HubEvent]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[HubEvent, dict[str, Any]]] = []
        for event in events:
            data = event.data or {}
            if not all(isinstance(data.get(k), dict) for k in ("contact", "conversation", "message")):
                outcomes[event.id] = Outcome.dead("event data has no contact, conversation or message")
                continue
            pending.append((event, data))
        ids = [str(d["message"]["id"]) for _, d in pending]
        sent = self.links.get_many(MESSAGE_LINK, ids)
        for event, data in pending:
            mid = str(data["message"]["id"])
            if mid in sent:
                outcomes[event.id] = Outcome.done({"chat_id": sent[mid], "already": True})
        pending = [(e, d) for e, d in pending if str(d["message"]["id"]) not in sent]
        if not pending:
            return outcomes
        marks = self.links.put_many(TRY_MARKER, [(str(d["message"]["id"]), "try", self.nonce) for _, d in pending])
        suspects = [(e, d) for e, d in pending if marks.get(str(d["message"]["id"])) != self.nonce]
        found = self._find_sent(suspects)
        if found is None:  # could not look: sending now might post them twice
            for event, _ in suspects:
                outcomes[event.id] = Outcome.retry("could not read the open line chats to check an earlier try")
            pending = [(e, d) for e, d in pending if e.id not in outcomes]
            found = {}
        if found:
            self.links.put_many(MESSAGE_LINK, [(mid, "chat", chat) for mid, chat in found.items()])
        for event, data in pending:
            mid = str(data["message"]["id"])
            if mid in found:
                outcomes[event.id] = Outcome.done({"chat_id": found[mid], "found": True})
        pending = [(e, d) for e, d in pending if str(d["message"]["id"]) not in found]
        s = self.setup
        for n in range(0, len(pending), MESSAGES_PER_CALL):
            chunk = pending[n:n + MESSAGES_PER_CALL]
            try:
                result = self.client.call("imconnector.send.messages", {
                    "CONNECTOR": s.connector, "LINE": s.line, "MESSAGES": [message_item(d) for _, d in chunk]})
            except Bitrix24Error as exc:
                outcome = self._failure(exc, "imconnector.send.messages")
                for event, _ in chunk:
                    outcomes[event.id] = outcome
                continue
            rows = ((result or {}).get("DATA") or {}).get("RESULT") or []
            if isinstance(rows, dict):
                rows = list(rows.values())
            chats, messages, users = [], [], []
            for index, (event, data) in enumerate(chunk):
                row = rows[index] if index < len(rows) and isinstance(rows[index], dict) else {}
                chat = str((row.get("session") or {}).get("CHAT_ID") or "")
                if row.get("SUCCESS") and chat:
                    messages.append((str(data["message"]["id"]), "chat", chat))
                    chats.append((str(data["conversation"]["id"]), "chat", chat))
                    if str(row.get("user") or "").isdigit():
                        users.append((str(data["contact"]["id"]), "user", str(row["user"])))
                    outcomes[event.id] = Outcome.done({"chat_id": chat, "session_id": row["session"].get("ID")})
                elif row.get("SUCCESS") is False:
                    errors = row.get("ERRORS") or ["no reason given"]
                    outcomes[event.id] = Outcome.dead("Bitrix24 refused the message: " + "; ".join(map(str, errors)))
                else:
                    outcomes[event.id] = Outcome.retry("imconnector.send.messages answered without this message")
            self.links.put_many(MESSAGE_LINK, messages)
            self.links.set_many(CHAT_LINK, chats)
            self.links.set_many(USER_LINK, users)
        return outcomes

    def _find_sent(self, suspects: list[tuple[HubEvent, dict[str, Any]]]) -> dict[str, str] | None:
        """hub message id -> chat id, for messages an interrupted try already put in their
        chat; None when the chats could not be read."""
        if not suspects:
            return {}
        chats = self.links.get_many(CHAT_LINK, sorted({str(d["conversation"]["id"]) for _, d in suspects}))
        # A conversation whose first answer was lost has no chat link: its chat is found by
        # the user code of the contact's Bitrix24 user, when an earlier answer named it.
        unknown = {str(d["conversation"]["id"]): str(d["contact"]["id"]) for _, d in suspects
                   if str(d["conversation"]["id"]) not in chats}
        users = self.links.get_many(USER_LINK, sorted(set(unknown.values())))
        s = self.setup
        dialogs = self._read([(f"u{conv}", "imopenlines.dialog.get",
                               {"USER_CODE": f"{s.connector}|{s.line}|{conv}|{users[contact]}"})
                              for conv, contact in sorted(unknown.items()) if contact in users])
        if dialogs is None:
            return None
        for key, dialog in dialogs.items():
            if isinstance(dialog, dict) and str(dialog.get("id") or "").isdigit():
                chats[key[1:]] = str(dialog["id"])
        # A contact never answered for before: its Bitrix24 user, and so its user code, is
        # unknown; the line's sessions since the first try name both (userCode, chatId).
        strangers = {conv for conv, contact in unknown.items() if contact not in users}
        if strangers:
            since = min(e.occurred_at for e, d in suspects if str(d["conversation"]["id"]) in strangers)
            opened = self._sessions_opened(strangers, since)
            if opened is None:
                return None
            chats.update({conv: chat for conv, (chat, _) in opened.items()})
            self.links.set_many(USER_LINK, [(unknown[conv], "user", user) for conv, (_, user) in opened.items()
                                            if user.isdigit()])
        histories = self._read([(f"h{chat}", "im.dialog.messages.get", {"DIALOG_ID": f"chat{chat}", "LIMIT": 50})
                                for chat in sorted(set(chats.values()))])
        if histories is None:
            return None
        found: dict[str, str] = {}
        for _, data in suspects:
            chat = chats.get(str(data["conversation"]["id"]))
            history = histories.get(f"h{chat}") if chat else None
            wanted = external_id(data["message"])
            for row in (history or {}).get("messages") or [] if isinstance(history, dict) else []:
                mids = ((row.get("params") or {}).get("CONNECTOR_MID")) or []
                if wanted in [str(m) for m in (mids.values() if isinstance(mids, dict) else mids)]:
                    found[str(data["message"]["id"])] = chat
                    break
        return found

    def _sessions_opened(self, conversations: set[str], since: datetime) -> dict[str, tuple[str, str]] | None:
        """conversation id -> (chat id, Bitrix24 user id) for the chats of this line opened
        since `since`, read from imopenlines.v2.Session.list; None when it could not be read
        now. Where the portal will not list sessions at all (the plan has no Open Channels
        reports, the app's user may not see them) nothing is found and those messages are
        sent again, as before this lookup existed."""
        s = self.setup
        now = self.clock()
        start = max(since - SESSION_MARGIN, now - SESSION_SPAN)
        query = {"configId": s.line, "source": s.connector, "dateCreateFrom": start.isoformat(timespec="seconds"),
                 "dateCreateTo": (now + SESSION_MARGIN).isoformat(timespec="seconds"),
                 "order": "dateCreate", "orderDirection": "asc", "limit": SESSION_PAGE}
        found: dict[str, tuple[str, str]] = {}
        for offset in range(0, SESSION_OFFSET_MAX + 1, SESSION_PAGE):
            try:
                page = self.client.call(SESSION_LIST, {**query, "offset": offset})
            except MethodError as exc:
                log.warning("Bitrix24: %s refused (%s); the first messages of new contacts whose answer was "
                            "lost are sent again", SESSION_LIST, exc.summary())
                return found
            except Bitrix24Error as exc:
                log.warning("Bitrix24: could not read the open line's sessions to check earlier tries: %s",
                            exc.summary())
                return None
            page = page if isinstance(page, dict) else {}
            for row in page.get("sessions") or []:
                parts = str((row or {}).get("userCode") or "").split("|")
                if (len(parts) == 4 and parts[0].lower() == s.connector and parts[1] == str(s.line)
                        and parts[2] in conversations and str(row.get("chatId") or "").isdigit()):
                    found[parts[2]] = (str(row["chatId"]), str(row.get("userId") or parts[3]))
            if not page.get("hasNextPage") or len(found) == len(conversations):
                break
        return found

    def _read(self, calls: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any] | None:
        """Results of read-only calls, 50 a batch; None when one could not be read.
        ACCESS_ERROR ("not found or no access") reads as nothing there: the message is
        sent (again), rather than waiting for ever on a chat the app cannot see."""
        results: dict[str, Any] = {}
        for n in range(0, len(calls), 50):
            try:
                answer = self.client.batch(calls[n:n + 50])
            except Bitrix24Error as exc:
                log.warning("Bitrix24: could not read open line chats to check earlier tries: %s", exc.summary())
                return None
            if any(err.code != "ACCESS_ERROR" for err in answer.errors.values()):
                return None
            results.update(answer.results)
        return results

    def _report(self, events: list[HubEvent]) -> dict[str, Outcome]:
        """WhatsApp statuses of operators' messages back into their chat."""
        outcomes: dict[str, Outcome] = {}
        wanted: list[tuple[HubEvent, str, str, str, str]] = []  # event, hub id, kind, im ids, conversation
        for event in events:
            data = event.data or {}
            message = data.get("message") if isinstance(data.get("message"), dict) else {}
            conversation = data.get("conversation_id") or (data.get("conversation") or {}).get("id")
            status = "sent" if event.type == "message.sent" else str(message.get("status") or "")
            kinds = {"sent": ["delivered"], "delivered": ["delivered"], "read": ["delivered", "read"],
                     "failed": ["failed"]}.get(status, [])
            if "id" not in message or not kinds:
                outcomes[event.id] = Outcome.done({"skipped": f"status {status or '?'}"})
                continue
            for kind in kinds:
                wanted.append((event, str(message["id"]), kind, "", str(conversation)))
        ims = self.links.get_many(CRM_MESSAGE, sorted({w[1] for w in wanted}))
        keys = [f"{hub_id}:{kind}" for _, hub_id, kind, _, _ in wanted]
        done = self.links.get_many(REPORTED, keys)
        s = self.setup
        delivery, reading, failures, reporting = [], [], [], []
        for event, hub_id, kind, _, conversation in wanted:
            im = ims.get(hub_id, "")
            chat_id, _, message_id = im.partition(":")
            if not (chat_id.isdigit() and message_id.isdigit()):
                outcomes.setdefault(event.id, Outcome.done({"skipped": "not typed in an open line"}))
                continue
            if f"{hub_id}:{kind}" in done:
                continue
            message = (event.data or {}).get("message") or {}
            item = {"im": {"chat_id": int(chat_id), "message_id": int(message_id)},
                    "message": {"id": [external_id(message)]}, "chat": {"id": conversation}}
            if kind == "delivered":
                item["message"]["date"] = int(self.clock().timestamp())
                delivery.append(item)
            elif kind == "read":
                reading.append(item)
            else:
                failures.append((hub_id, chat_id, message))
            reporting.append((event, hub_id, kind))
        # A failure notice is not idempotent: marked before it is sent (at most once).
        if failures:
            marks = self.links.put_many(REPORTED, [(f"{h}:failed", "notice", self.nonce) for h, _, _ in failures])
            failures = [f for f in failures if marks.get(f"{f[0]}:failed") == self.nonce]
        calls = []
        if delivery:
            calls.append(("delivery", "imconnector.send.status.delivery",
                          {"CONNECTOR": s.connector, "LINE": s.line, "MESSAGES": delivery}))
        if reading:
            calls.append(("reading", "imconnector.send.status.reading",
                          {"CONNECTOR": s.connector, "LINE": s.line, "MESSAGES": reading}))
        for hub_id, chat_id, message in failures:
            error = message.get("error") or {}
            reason = error.get("details") or error.get("title") or "WhatsApp did not deliver it"
            calls.append((f"f{hub_id}", "im.message.add", {
                "DIALOG_ID": f"chat{chat_id}", "SYSTEM": "Y",
                "MESSAGE": f"Not delivered to WhatsApp: {reason} (code {error.get('code', '?')})."}))
        errors: dict[str, Bitrix24Error] = {}
        if calls:
            try:
                answer = self.client.batch(calls)
                errors = answer.errors
                self._remember_notices(answer.results, [k for k, _, _ in calls if k.startswith("f")])
            except Bitrix24Error as exc:
                outcome = self._failure(exc, "batch")
                for event, _, _ in reporting:
                    outcomes[event.id] = outcome
                return outcomes
        stored = []
        for event, hub_id, kind in reporting:
            key = {"delivered": "delivery", "read": "reading"}.get(kind, f"f{hub_id}")
            if key in errors:
                outcomes[event.id] = self._failure(errors[key], dict((k, m) for k, m, _ in calls)[key])
            else:
                if kind != "failed":
                    stored.append((f"{hub_id}:{kind}", "status", "reported"))
                outcomes.setdefault(event.id, Outcome.done({"reported": kind}))
        self.links.put_many(REPORTED, stored)
        for event in events:
            outcomes.setdefault(event.id, Outcome.done({"reported": "already"}))
        return outcomes

    def _remember_notices(self, results: dict[str, Any], keys: list[str]) -> None:
        ids = [str(results[k]) for k in keys if str(results.get(k) or "").isdigit()]
        if ids:
            self.links.put_many(NOTICE, [(i, "notice", "1") for i in ids])

    # ---- Bitrix24 -> hub -----------------------------------------------------------------
    def commands_for(self, body: dict[str, Any]) -> list[Command]:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if str(data.get("CONNECTOR") or "").lower() != self.setup.connector:
            return []  # another connector of the same app
        if str(data.get("LINE") or "") != str(self.setup.line):
            log.info("Bitrix24: an operator's message on line %s, not this connector's line %s",
                     data.get("LINE"), self.setup.line)
            return []
        raw = data.get("MESSAGES")
        items = list(raw.values()) if isinstance(raw, dict) else list(raw or [])
        commands: list[Command] = []
        ours = self.links.get_many(NOTICE, [str((i.get("im") or {}).get("message_id") or "") for i in items
                                            if isinstance(i, dict) and isinstance(i.get("im"), dict)])
        for item in items:
            if not isinstance(item, dict):
                continue
            im = item.get("im") if isinstance(item.get("im"), dict) else {}
            message = item.get("message") if isinstance(item.get("message"), dict) else {}
            chat = item.get("chat") if isinstance(item.get("chat"), dict) else {}
            chat_id, message_id = str(im.get("chat_id") or ""), str(im.get("message_id") or "")
            conversation = str(chat.get("id") or "")
            if not (chat_id.isdigit() and message_id.isdigit()):
                raise WebhookRejected(400, f"{EVENT} without im.chat_id / im.message_id")
            if not conversation.isdigit() or message_id in ours:
                continue  # not a chat the hub opened, or the hub's own notice coming back
            raw_text = str(message.get("text") or "")
            text = whatsapp_text(raw_text)
            files = message.get("files")
            files = list(files.values()) if isinstance(files, dict) else list(files or [])
            links = [f"{f.get('name') or 'file'}: {f.get('link') or f.get('url')}" for f in files
                     if isinstance(f, dict) and (f.get("link") or f.get("url"))]
            text = "\n".join([t for t in [text, *links] if t])
            if not text:
                continue
            signed = SIGNATURE.match(raw_text)
            commands.append(SendText(
                text=text, conversation_id=int(conversation),
                author=signed.group(1).strip() if signed else f"Bitrix24 user {message.get('user_id') or ''}".strip(),
                idempotency_key=f"{KEY_PREFIX}{message_id}", crm_message_id=f"{chat_id}:{message_id}"))
        return commands

    def commands_done(self, commands: list[Command], results: list[dict[str, Any]]) -> None:
        """A refused reply (the 24-hour window, naming the templates) as a system message in its chat."""
        self.nonce = uuid.uuid4().hex
        calls: list[tuple[str, str, dict[str, Any]]] = []
        wanted: list[tuple[str, str, dict[str, Any]]] = []
        for command, result in zip(commands, results):
            if not isinstance(command, SendText) or not (command.idempotency_key or "").startswith(KEY_PREFIX):
                continue
            if result.get("ok"):
                continue
            chat_id, _, message_id = (command.crm_message_id or "").partition(":")
            if chat_id.isdigit():
                wanted.append((f"refused:{message_id}", chat_id, result))
        # Bitrix24 may resend the event: one notice per refused message (marked first).
        marks = self.links.put_many(REPORTED, [(key, "notice", self.nonce) for key, _, _ in wanted]) if wanted else {}
        for key, chat_id, result in wanted:
            if marks.get(key) == self.nonce:
                calls.append((f"n{len(calls)}", "im.message.add",
                              {"DIALOG_ID": f"chat{chat_id}", "SYSTEM": "Y", "MESSAGE": window_notice(result)}))
        if calls:
            answer = self.client.batch(calls[:50])
            self._remember_notices(answer.results, [k for k, _, _ in calls])
            for key, err in answer.errors.items():
                log.warning("Bitrix24: could not tell the chat about a refused reply (%s): %s", key, err.summary())
