"""A local amoCRM (API v4) for tests, benchmarks and `hub demo`.

Same paths, bodies, errors and limits as the documentation in README.md: OAuth 2.0 with
single-use refresh tokens (a refresh revokes the old pair), long-lived tokens, the
7 requests/second account limit (429, then 403 after repeated abuse), problem+json
errors, 204 for empty lists, _links.next pagination, leads/complex, notes, pipelines,
users, custom fields, and outbound webhooks in amoCRM's form encoding.

Chaos for tests: `chaos(fail_rate=, rate_limit_rate=, timeout_rate=, lost_rate=)` makes a
share of API answers 5xx (nothing applied), 429 with Retry-After, slow past the client's
timeout (applied), or 502 after applying; `stall_next_post()` holds one applied POST's
answer until released, for killing a worker at the worst moment.

    with serve() as amo:
        requests.get(amo.base_url + "/api/v4/account", headers={"Authorization": "Bearer " + amo.token})
"""
from __future__ import annotations

import collections
import json
import logging
import queue
import random
import re
import secrets
import threading
import time
from typing import Any, Callable
from urllib.parse import urlencode

import requests
from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

from connectors.amocrm import phpform
from connectors.amocrm.emulator_store import WON, LOST, Invalid, Store

log = logging.getLogger(__name__)

LONG_LIVED_TOKEN = "emulator-long-lived-token"
CLIENT_ID = "4f0e5c1a-emul-4ato-r000-000000000001"
CLIENT_SECRET = "emulator-client-secret"
REDIRECT_URI = "https://hub.example/oauth/amocrm"
HAL = "application/hal+json"
PROBLEM = "application/problem+json"
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail, **extra}
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)


def oauth_problem(status: int, hint: str) -> Response:
    body = {"hint": hint, "title": "Некорректный запрос", "type": OAUTH_PROBLEM_TYPE, "status": status,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны"}
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)


def hal(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=HAL)


class RateGate:
    """amoCRM's account limit as a token bucket (7/s, bursts of 7) plus the block: after
    `block_after` refusals within a minute every request gets 403 for `block_seconds`."""

    def __init__(self, rate: float, block_after: int, block_seconds: float, clock: Callable[[], float]):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.block_after = block_after
        self.block_seconds = block_seconds
        self.clock = clock
        self.updated = clock()
        self.refusals: collections.deque[float] = collections.deque()
        self.blocked_until = 0.0
        self.lock = threading.Lock()

    def admit(self) -> str:
        """"ok", "limited" or "blocked"."""
        with self.lock:
            now = self.clock()
            if now < self.blocked_until:
                return "blocked"
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return "ok"
            self.refusals.append(now)
            while self.refusals and self.refusals[0] < now - 60:
                self.refusals.popleft()
            if len(self.refusals) >= self.block_after:
                self.blocked_until = now + self.block_seconds
                self.refusals.clear()
            return "limited"


class OAuth:
    """Codes, access tokens and single-use refresh tokens (league/oauth2-server style)."""

    def __init__(self, clock: Callable[[], float], access_ttl: int):
        self.clock = clock
        self.access_ttl = access_ttl
        self.clients = {CLIENT_ID: (CLIENT_SECRET, REDIRECT_URI)}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.long_lived = {LONG_LIVED_TOKEN}
        self.lock = threading.Lock()
        self.stats = collections.Counter()
        self.approve = True  # the emulated user grants access on the authorization page

    def issue_code(self, client_id: str = CLIENT_ID) -> str:
        code = "def502" + secrets.token_hex(24)
        with self.lock:
            self.codes[code] = {"client": client_id, "expires": self.clock() + 20 * 60, "used": False}
        return code

    def authorize(self, args: dict[str, str], referer: str) -> Response:
        """The authorization page (www.amocrm.ru/oauth?client_id=&state=&mode=): once the
        user picks the account and allows access, the browser goes to the integration's
        registered redirect URI with code, state, referer (the account's host) and
        client_id; error=access_denied when they decline. An unknown integration gets an
        error page."""
        client = self.clients.get(args.get("client_id") or "")
        if client is None:
            return Response("Integration not found", status=404, mimetype="text/plain")
        answer: dict[str, str] = {"state": args["state"]} if args.get("state") else {}
        if self.approve:
            answer = {"code": self.issue_code(args["client_id"]), **answer, "referer": referer,
                      "client_id": args["client_id"], "from_widget": "1"}
        else:
            answer = {"error": "access_denied", **answer}
        separator = "&" if "?" in client[1] else "?"
        return Response(status=302, headers={"Location": client[1] + separator + urlencode(answer)})

    def _pair(self, client_id: str) -> dict[str, Any]:
        access, refresh = "eyJ0" + secrets.token_urlsafe(32), "def50200" + secrets.token_hex(32)
        self.access[access] = {"client": client_id, "expires": self.clock() + self.access_ttl, "revoked": False}
        self.refresh[refresh] = {"client": client_id, "access": access, "used": False, "revoked": False}
        return {"token_type": "Bearer", "expires_in": self.access_ttl, "access_token": access,
                "refresh_token": refresh, "server_time": int(self.clock())}

    def grant(self, body: dict[str, Any]) -> Response:
        client_id = str(body.get("client_id") or "")
        with self.lock:
            client = self.clients.get(client_id)
            if client is None or body.get("client_secret") != client[0]:
                self.stats["bad_client"] += 1
                return oauth_problem(401, "Client authentication failed")
            if body.get("redirect_uri") != client[1]:
                return oauth_problem(400, "Check the `redirect_uri` parameter")
            kind = body.get("grant_type")
            if kind == "authorization_code":
                code = self.codes.get(str(body.get("code") or ""))
                if code is None or code["client"] != client_id:
                    return oauth_problem(400, "Cannot decrypt the authorization code")
                if code["used"]:
                    return oauth_problem(400, "Authorization code has been revoked")
                if code["expires"] < self.clock():
                    return oauth_problem(400, "Authorization code has expired")
                code["used"] = True
                self.stats["code_exchanges"] += 1
                return hal(self._pair(client_id))
            if kind == "refresh_token":
                token = self.refresh.get(str(body.get("refresh_token") or ""))
                if token is None or token["client"] != client_id:
                    return oauth_problem(400, "Cannot decrypt the refresh token")
                if token["used"] or token["revoked"]:
                    self.stats["dead_refresh_presented"] += 1
                    return oauth_problem(400, "Token has been revoked")
                token["used"] = True
                old = self.access.get(token["access"])
                if old:
                    old["revoked"] = True  # a refresh retires the whole previous pair
                self.stats["refreshes"] += 1
                return hal(self._pair(client_id))
            return oauth_problem(400, "The authorization grant type is not supported by the authorization server.")

    def valid(self, bearer: str) -> bool:
        with self.lock:
            if bearer in self.long_lived:
                return True
            token = self.access.get(bearer)
            return bool(token and not token["revoked"] and token["expires"] > self.clock())

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access.values():
                token["expires"] = self.clock() - 1

    def revoke_all(self) -> None:
        """The admin disabled the integration in amoCRM: every token stops working."""
        with self.lock:
            for token in self.access.values():
                token["revoked"] = True
            for token in self.refresh.values():
                token["revoked"] = True

    def live_refresh_tokens(self) -> list[str]:
        with self.lock:
            return [t for t, v in self.refresh.items() if not v["used"] and not v["revoked"]]


class Emulator:
    def __init__(self, *, rate_limit: float = 7.0, block_after: int = 30, block_seconds: float = 60.0,
                 access_ttl: int = 86400, subdomain: str = "emulator", seed: int = 0,
                 timeout_delay: float = 2.0, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.store = Store(subdomain=subdomain, clock=clock)
        self.gate = RateGate(rate_limit, block_after, block_seconds, clock)
        self.oauth = OAuth(clock, access_ttl)
        self.rng = random.Random(seed)
        self.timeout_delay = timeout_delay
        self.rates = {"fail": 0.0, "rate_limit": 0.0, "timeout": 0.0, "lost": 0.0}
        self.stats = collections.Counter()
        self.stats_lock = threading.Lock()
        self.webhooks: list[dict[str, Any]] = []
        self.webhook_log: list[dict[str, Any]] = []
        self._outbox: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._stall = threading.Event()
        self._stall_suffix = ""
        self.stalled = threading.Event()
        self._release = threading.Event()
        self.base_url = ""
        self.amojo_id = "af9945ff-1490-4cad-807d-945c15d88bec"  # = emulator_amojo.ACCOUNT_ID
        self.store.on_status_change = self._status_webhook
        self.store.on_note = self._note_webhook
        self.store.on_responsible_change = self._responsible_webhook
        self.app = self._build_app()

    # -- test controls -------------------------------------------------------------------------
    def chaos(self, *, fail_rate: float = 0.0, rate_limit_rate: float = 0.0, timeout_rate: float = 0.0,
              lost_rate: float = 0.0, seed: int | None = None) -> None:
        self.rates = {"fail": fail_rate, "rate_limit": rate_limit_rate, "timeout": timeout_rate,
                      "lost": lost_rate}
        if seed is not None:
            self.rng.seed(seed)

    def stall_next_post(self, path_suffix: str = "") -> None:
        """The next creating POST (whose path ends with `path_suffix`: "complex", "notes")
        is applied, then its answer waits for release_stall()."""
        self._stall_suffix = path_suffix
        self._release.clear()
        self.stalled.clear()
        self._stall.set()

    def release_stall(self) -> None:
        self._release.set()

    def expire_access_tokens(self) -> None:
        self.oauth.expire_access_tokens()

    def count(self, name: str, n: int = 1) -> None:
        with self.stats_lock:
            self.stats[name] += n

    def register_webhook(self, destination: str, settings: list[str] | None = None) -> None:
        """Subscribe `destination`; subscribing an address again replaces its events and
        enables it again."""
        hook = {"destination": destination, "settings": settings or ["status_lead", "note_lead"], "disabled": False}
        for i, existing in enumerate(self.webhooks):
            if existing["destination"] == destination:
                self.webhooks[i] = hook
                return
        self.webhooks.append(hook)

    def disable_webhooks(self) -> None:
        """What amoCRM does to a webhook whose address keeps failing."""
        for hook in self.webhooks:
            hook["disabled"] = True

    def move_lead(self, lead_id: int, status_id: int, pipeline_id: int | None = None) -> None:
        """A salesperson drags the deal to another stage (fires the status webhook)."""
        body: dict[str, Any] = {"id": lead_id, "status_id": status_id}
        if pipeline_id:
            body["pipeline_id"] = pipeline_id
        self.store.update_leads([body])

    def user_note(self, lead_id: int, text: str, user_id: int = 9_000_002) -> int:
        """A salesperson types a note on the deal (fires the note webhook)."""
        return self.store.add_notes("leads", [{"entity_id": lead_id, "note_type": "common",
                                               "params": {"text": text}, "created_by": user_id}])[0]["id"]

    def add_contact(self, name: str, phone: str) -> int:
        """A customer amoCRM already knew before the hub."""
        return self.store.add_contacts([{"name": name, "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]}]}])[0]["id"]

    # -- outbound webhooks ------------------------------------------------------------------
    def _account_part(self) -> dict[str, Any]:
        return {"subdomain": self.store.subdomain, "id": str(self.store.account_id),
                "_links": {"self": f"https://{self.store.subdomain}.amocrm.ru"}}

    def _lead_part(self, lead: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": lead["id"], "name": lead["name"], "status_id": lead["status_id"], "price": lead["price"],
            "responsible_user_id": lead["responsible_user_id"], "last_modified": lead["updated_at"],
            "modified_user_id": self.store.users[0]["id"], "created_user_id": self.store.users[0]["id"],
            "date_create": lead["created_at"], "pipeline_id": lead["pipeline_id"],
            "account_id": self.store.account_id,
            "custom_fields": [{"id": cf["field_id"], "name": cf["field_name"],
                               "values": [{"value": v["value"]} for v in cf["values"]]}
                              for cf in lead["custom_fields_values"]],
            "created_at": lead["created_at"], "updated_at": lead["updated_at"],
        }

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        body = phpform.encode(payload)
        for hook in self.webhooks:
            if event in hook["settings"] and not hook.get("disabled"):
                self._outbox.put((hook["destination"], body))

    def _status_webhook(self, lead: dict[str, Any], old_status: int, old_pipeline: int) -> None:
        part = {**self._lead_part(lead), "old_status_id": old_status, "old_pipeline_id": old_pipeline}
        self._send("status_lead", {"leads": {"status": [part]}, "account": self._account_part()})

    def _responsible_webhook(self, lead: dict[str, Any], old_user: int) -> None:
        """amoCRM's "responsible changed" webhook: leads[responsible][0][...] with the new
        responsible_user_id and the old one."""
        part = {**self._lead_part(lead), "old_responsible_user_id": old_user}
        self._send("responsible_lead", {"leads": {"responsible": [part]}, "account": self._account_part()})

    def hand_over(self, lead_id: int, user_id: int) -> None:
        """A manager makes another user responsible for the deal (fires the responsible webhook)."""
        self.store.update_leads([{"id": lead_id, "responsible_user_id": user_id}])

    def _note_webhook(self, note: dict[str, Any]) -> None:
        if note["entity"] != "leads":
            return
        meta = {"event_source": {"author_id": note["created_by"], "author_name": next(
            (u["name"] for u in self.store.users if u["id"] == note["created_by"]), ""), "type": "web"}}
        part = {"note": {"id": note["id"], "text": note["params"].get("text", ""), "note_type": 4,
                         "element_id": note["entity_id"], "element_type": 2, "created_by": note["created_by"],
                         "date_create": note["created_at"], "account_id": self.store.account_id,
                         "metadata": json.dumps(meta, ensure_ascii=False)}}
        self._send("note_lead", {"leads": {"note": [part]}, "account": self._account_part()})

    def _deliver_webhooks(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            url, body = item
            try:
                answer = requests.post(url, data=body, timeout=5,
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
                self.webhook_log.append({"url": url, "body": body, "status": answer.status_code})
            except requests.RequestException as exc:
                self.webhook_log.append({"url": url, "body": body, "status": None, "error": str(exc)})
            finally:
                self._outbox.task_done()

    def flush_webhooks(self) -> None:
        self._outbox.join()

    # -- the HTTP API -----------------------------------------------------------------------
    def _build_app(self) -> Flask:
        app = Flask("amocrm-emulator")
        emu = self
        store = self.store

        @app.before_request
        def gate() -> Response | None:
            if request.path == "/oauth":
                return None  # the authorization page is www.amocrm.ru's, not the account's API
            emu.count("requests")
            emu.count(f"{request.method} {_ID.sub('{id}', request.path)}")
            verdict = emu.gate.admit()
            if verdict == "blocked":
                emu.count("forbidden")
                return problem(403, "Forbidden", "Access denied: too many requests; the integration is blocked")
            if verdict == "limited":
                emu.count("rate_limited")
                return _with_retry_after(problem(429, "Too Many Requests", "Too many requests"), 1)
            if request.path == "/oauth2/access_token":
                return None
            bearer = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if not emu.oauth.valid(bearer):
                emu.count("unauthorized")
                return problem(401, "Unauthorized", "Unauthorized")
            roll = emu.rng.random() if any(emu.rates.values()) else 1.0
            if roll < emu.rates["rate_limit"]:
                emu.count("rate_limited")
                emu.count("injected_429")
                return _with_retry_after(problem(429, "Too Many Requests", "Too many requests"), 1)
            roll -= emu.rates["rate_limit"]
            if roll < emu.rates["fail"]:
                emu.count("injected_5xx")
                return problem(503, "Service Unavailable", "Service temporarily unavailable")
            roll -= emu.rates["fail"]
            request.environ["emu.after"] = (
                "timeout" if roll < emu.rates["timeout"] else
                "lost" if roll - emu.rates["timeout"] < emu.rates["lost"] else None)
            return None

        @app.after_request
        def after(response: Response) -> Response:
            fate = request.environ.get("emu.after")
            if response.status_code < 300 and request.method == "POST" and emu._stall.is_set() \
                    and request.path.startswith("/api/v4/") and request.path.endswith(("complex", "notes")) \
                    and request.path.endswith(emu._stall_suffix):
                emu._stall.clear()
                emu.stalled.set()
                emu._release.wait(120)
            if fate == "timeout":
                emu.count("injected_timeouts")
                time.sleep(emu.timeout_delay)
            elif fate == "lost" and request.method != "GET":
                emu.count("injected_lost")
                return problem(502, "Bad Gateway", "Bad Gateway")
            return response

        @app.errorhandler(404)
        def not_found(_exc: Exception) -> Response:
            return problem(404, "Not Found", "Not Found")

        @app.errorhandler(405)
        def not_allowed(_exc: Exception) -> Response:
            return problem(405, "Method Not Allowed", "Method Not Allowed")

        @app.get("/oauth")
        def authorize() -> Response:
            return emu.oauth.authorize(request.args.to_dict(), f"{store.subdomain}.amocrm.ru")

        @app.post("/oauth2/access_token")
        def token() -> Response:
            body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
            return emu.oauth.grant(body or {})

        @app.get("/api/v4/account")
        def account() -> Response:
            body = {"id": store.account_id, "name": "Emulated account", "subdomain": store.subdomain,
                    "created_at": 1_600_000_000, "created_by": store.users[0]["id"],
                    "current_user_id": store.users[0]["id"], "country": "RU", "currency": "RUB",
                    "currency_symbol": "₽", "customers_mode": "disabled", "is_unsorted_on": True,
                    "is_loss_reason_enabled": True, "is_helpbot_enabled": False,
                    "is_technical_account": False, "contact_name_display_order": 1,
                    "_links": {"self": {"href": emu.base_url + "/api/v4/account"}}}
            if "amojo_id" in _withs():  # the account's id in the Chats API
                body["amojo_id"] = emu.amojo_id
            return hal(body)

        @app.get("/api/v4/users")
        def users() -> Response:
            items = [{"id": u["id"], "name": u["name"], "email": u["email"], "lang": "en",
                      "rights": {"leads": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
                                 "is_admin": u["id"] == store.users[0]["id"], "is_active": True},
                      "_links": {"self": {"href": f"{emu.base_url}/api/v4/users/{u['id']}"}}} for u in store.users]
            return emu._page("/api/v4/users", "users", items)

        @app.get("/api/v4/leads/pipelines")
        def pipelines() -> Response:
            items = []
            for p in store.pipelines:
                statuses = [{**s, "is_editable": s["id"] not in (WON, LOST), "pipeline_id": p["id"],
                             "color": "#99ccff", "account_id": store.account_id,
                             "_links": {"self": {"href": f"{emu.base_url}/api/v4/leads/pipelines/{p['id']}"
                                                         f"/statuses/{s['id']}"}}} for s in p["statuses"]]
                items.append({"id": p["id"], "name": p["name"], "sort": 1, "is_main": p["is_main"],
                              "is_unsorted_on": True, "is_archive": False, "account_id": store.account_id,
                              "_links": {"self": {"href": f"{emu.base_url}/api/v4/leads/pipelines/{p['id']}"}},
                              "_embedded": {"statuses": statuses}})
            return hal({"_total_items": len(items),
                        "_links": {"self": {"href": emu.base_url + "/api/v4/leads/pipelines"}},
                        "_embedded": {"pipelines": items}})

        @app.get("/api/v4/<any(leads, contacts):entity>/custom_fields")
        def custom_fields(entity: str) -> Response:
            return emu._page(f"/api/v4/{entity}/custom_fields", "custom_fields",
                             [f.json(entity) for f in store.fields[entity]])

        @app.get("/api/v4/leads")
        def leads_list() -> Response:
            with store.lock:
                items = [x for x in store.leads.values() if not x["is_deleted"]]
                ids = _int_list("filter[id]")
                if ids:
                    items = [x for x in items if x["id"] in ids]
                pipes = _int_list("filter[pipeline_id]")
                if pipes:
                    items = [x for x in items if x["pipeline_id"] in pipes]
                query = request.args.get("query")
                if query:
                    items = [x for x in items if store.lead_matches(x, query)]
                items = _ordered(items)
                withs = _withs()
                rendered = [emu._lead_json(x, "contacts" in withs) for x in items]
            return emu._page("/api/v4/leads", "leads", rendered)

        @app.get("/api/v4/leads/<int:lead_id>")
        def lead_one(lead_id: int) -> Response:
            lead = store.leads.get(lead_id)
            if lead is None or lead["is_deleted"]:
                return problem(404, "Not Found", "Not Found")
            return hal(emu._lead_json(lead, "contacts" in _withs()))

        @app.post("/api/v4/leads/complex")
        def complex_() -> Response:
            try:
                created = store.add_complex(request.get_json(silent=True))
            except Invalid as exc:
                return _invalid(exc)
            emu.count("complex_requests")
            return hal(created)

        @app.patch("/api/v4/leads")
        def leads_patch() -> Response:
            try:
                updated = store.update_leads(request.get_json(silent=True))
            except Invalid as exc:
                return _invalid(exc)
            return hal({"_links": {"self": {"href": emu.base_url + "/api/v4/leads"}},
                        "_embedded": {"leads": [{**u, "_links": {"self": {
                            "href": f"{emu.base_url}/api/v4/leads/{u['id']}"}}} for u in updated]}})

        @app.get("/api/v4/contacts")
        def contacts_list() -> Response:
            with store.lock:
                items = [c for c in store.contacts.values() if not c["is_deleted"]]
                ids = _int_list("filter[id]")
                if ids:
                    items = [c for c in items if c["id"] in ids]
                query = request.args.get("query")
                if query:
                    items = [c for c in items if store.contact_matches(c, query)]
                items = _ordered(items)
                rendered = [emu._contact_json(c, "leads" in _withs()) for c in items]
            return emu._page("/api/v4/contacts", "contacts", rendered)

        @app.get("/api/v4/contacts/<int:contact_id>")
        def contact_one(contact_id: int) -> Response:
            contact = store.contacts.get(contact_id)
            if contact is None or contact["is_deleted"]:
                return problem(404, "Not Found", "Not Found")
            return hal(emu._contact_json(contact, "leads" in _withs()))

        @app.post("/api/v4/contacts")
        def contacts_add() -> Response:
            try:
                created = store.add_contacts(request.get_json(silent=True))
            except Invalid as exc:
                return _invalid(exc)
            return hal({"_links": {"self": {"href": emu.base_url + "/api/v4/contacts"}},
                        "_embedded": {"contacts": created}})

        @app.patch("/api/v4/contacts")
        def contacts_patch() -> Response:
            try:
                updated = store.update_contacts(request.get_json(silent=True))
            except Invalid as exc:
                return _invalid(exc)
            return hal({"_links": {"self": {"href": emu.base_url + "/api/v4/contacts"}},
                        "_embedded": {"contacts": [{**u, "_links": {"self": {
                            "href": f"{emu.base_url}/api/v4/contacts/{u['id']}"}}} for u in updated]}})

        @app.patch("/api/v4/contacts/<int:contact_id>")
        def contact_patch(contact_id: int) -> Response:
            body = request.get_json(silent=True)
            if contact_id not in store.contacts or store.contacts[contact_id]["is_deleted"]:
                return problem(404, "Not Found", "Not Found")
            try:
                (updated,) = store.update_contacts([{**body, "id": contact_id} if isinstance(body, dict) else body])
            except Invalid as exc:
                return _invalid(exc)
            updated.pop("request_id", None)
            return hal({**updated, "_links": {"self": {"href": f"{emu.base_url}/api/v4/contacts/{contact_id}"}}})

        @app.post("/api/v4/<any(leads, contacts):entity>/<int:entity_id>/<any(link, unlink):action>")
        def links_change(entity: str, entity_id: int, action: str) -> Response:
            """Entity links: 200 with the links made; unlink answers 204 No Content."""
            try:
                made = store.link(entity, entity_id, request.get_json(silent=True), unlink=action == "unlink")
            except Invalid as exc:
                return _invalid(exc)
            if made is None:
                return problem(404, "Not Found", "Not Found")
            if action == "unlink":
                return Response(status=204)
            return hal({"_total_items": len(made), "_embedded": {"links": made}})

        @app.post("/api/v4/<any(leads, contacts):entity>/notes")
        def notes_add(entity: str) -> Response:
            try:
                created = store.add_notes(entity, request.get_json(silent=True))
            except Invalid as exc:
                return _invalid(exc)
            emu.count("note_requests")
            return hal({"_links": {"self": {"href": f"{emu.base_url}/api/v4/{entity}/notes"}},
                        "_embedded": {"notes": [{**n, "_links": {"self": {
                            "href": f"{emu.base_url}/api/v4/{entity}/{n['entity_id']}/notes/{n['id']}"}}}
                            for n in created]}})

        @app.get("/api/v4/<any(leads, contacts):entity>/notes")
        def notes_list(entity: str) -> Response:
            return emu._notes(entity, None)

        @app.get("/api/v4/<any(leads, contacts):entity>/<int:entity_id>/notes")
        def notes_of(entity: str, entity_id: int) -> Response:
            return emu._notes(entity, entity_id)

        @app.post("/api/v4/tasks")
        def tasks_add() -> Response:
            try:
                created = store.add_tasks(request.get_json(silent=True))
            except Invalid as exc:
                return _invalid(exc)
            return hal({"_links": {"self": {"href": emu.base_url + "/api/v4/tasks"}},
                        "_embedded": {"tasks": [{**t, "_links": {"self": {
                            "href": f"{emu.base_url}/api/v4/tasks/{t['id']}"}}} for t in created]}})

        @app.get("/api/v4/tasks")
        def tasks_list() -> Response:
            def number(name: str) -> int | None:
                value = request.args.get(name)
                return int(value) if value and value.lstrip("-").isdigit() else None

            ids = {int(v) for v in request.args.getlist("filter[entity_id][]") + request.args.getlist("filter[entity_id]")
                   if v.isdigit()}
            found = store.find_tasks(request.args.get("filter[entity_type]"), ids,
                                     number("filter[updated_at][from]"), number("filter[updated_at][to]"))
            return emu._page("/api/v4/tasks", "tasks", found)

        @app.get("/api/v4/webhooks")
        def webhooks_list() -> Response:
            items = [{"id": i + 1, "destination": h["destination"], "settings": h["settings"],
                      "disabled": bool(h.get("disabled")),
                      "sort": 1, "created_at": 1_600_000_000} for i, h in enumerate(emu.webhooks)]
            if not items:
                return Response(status=204)
            return hal({"_total_items": len(items), "_embedded": {"webhooks": items}})

        @app.post("/api/v4/webhooks")
        def webhooks_add() -> Response:
            body = request.get_json(silent=True) or {}
            if not str(body.get("destination") or "").startswith(("http://", "https://")):
                return _invalid(Invalid([{"request_id": "0", "errors": [
                    {"code": "InvalidUrl", "path": "destination", "detail": "This value is not a valid URL."}]}]))
            emu.register_webhook(body["destination"], list(body.get("settings") or []))
            number = next(i for i, h in enumerate(emu.webhooks) if h["destination"] == body["destination"]) + 1
            return hal({"id": number, "destination": body["destination"],
                        "settings": emu.webhooks[number - 1]["settings"], "disabled": False}, 201)

        return app

    # -- rendering ---------------------------------------------------------------------------
    def _page(self, path: str, key: str, items: list[dict[str, Any]]) -> Response:
        try:
            page = max(1, int(request.args.get("page", 1)))
            limit = min(250, max(1, int(request.args.get("limit", 50))))
        except ValueError:
            return problem(400, "Bad Request", "page and limit must be integers")
        chunk = items[(page - 1) * limit: page * limit]
        if not chunk:
            return Response(status=204)
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
        links = {"self": {"href": f"{self.base_url}{path}?{urlencode(params + [('page', page)])}"}}
        if page * limit < len(items):
            links["next"] = {"href": f"{self.base_url}{path}?{urlencode(params + [('page', page + 1)])}"}
        if page > 1:
            links["prev"] = {"href": f"{self.base_url}{path}?{urlencode(params + [('page', page - 1)])}"}
        return hal({"_total_items": len(items), "_page": page, "_page_count": -(-len(items) // limit),
                    "_links": links, "_embedded": {key: chunk}})

    def _lead_json(self, lead: dict[str, Any], with_contacts: bool) -> dict[str, Any]:
        embedded: dict[str, Any] = {"tags": list(lead["tags"]), "companies": []}
        if with_contacts:
            embedded["contacts"] = [{"id": cid, "is_main": i == 0, "_links": {"self": {
                "href": f"{self.base_url}/api/v4/contacts/{cid}"}}} for i, cid in enumerate(lead["contact_ids"])]
        return {
            "id": lead["id"], "name": lead["name"], "price": lead["price"],
            "responsible_user_id": lead["responsible_user_id"], "group_id": 0, "status_id": lead["status_id"],
            "pipeline_id": lead["pipeline_id"], "loss_reason_id": None, "created_by": self.store.users[0]["id"],
            "updated_by": self.store.users[0]["id"], "created_at": lead["created_at"],
            "updated_at": lead["updated_at"], "closed_at": lead["closed_at"], "closest_task_at": None,
            "is_deleted": False, "custom_fields_values": lead["custom_fields_values"] or None, "score": None,
            "account_id": self.store.account_id, "labor_cost": None,
            "_links": {"self": {"href": f"{self.base_url}/api/v4/leads/{lead['id']}"}},
            "_embedded": embedded,
        }

    def _contact_json(self, contact: dict[str, Any], with_leads: bool) -> dict[str, Any]:
        embedded: dict[str, Any] = {"tags": list(contact["tags"]), "companies": []}
        if with_leads:
            embedded["leads"] = [{"id": lid, "_links": {"self": {"href": f"{self.base_url}/api/v4/leads/{lid}"}}}
                                 for lid in contact["lead_ids"]]
        return {
            "id": contact["id"], "name": contact["name"], "first_name": contact["first_name"],
            "last_name": contact["last_name"], "responsible_user_id": contact["responsible_user_id"],
            "group_id": 0, "created_by": self.store.users[0]["id"], "updated_by": self.store.users[0]["id"],
            "created_at": contact["created_at"], "updated_at": contact["updated_at"], "closest_task_at": None,
            "is_deleted": False, "is_unsorted": False,
            "custom_fields_values": contact["custom_fields_values"] or None,
            "account_id": self.store.account_id,
            "_links": {"self": {"href": f"{self.base_url}/api/v4/contacts/{contact['id']}"}},
            "_embedded": embedded,
        }

    def _notes(self, entity: str, entity_id: int | None) -> Response:
        with self.store.lock:
            items = [n for n in self.store.notes.values() if n["entity"] == entity]
            if entity_id is not None:
                items = [n for n in items if n["entity_id"] == entity_id]
            ids = _int_list("filter[id]")
            if ids:
                items = [n for n in items if n["id"] in ids]
            entity_ids = _int_list("filter[entity_id]")
            if entity_ids:
                items = [n for n in items if n["entity_id"] in entity_ids]
            types = request.args.getlist("filter[note_type][]") + request.args.getlist("filter[note_type]")
            if types:
                items = [n for n in items if n["note_type"] in types]
            lo = request.args.get("filter[updated_at][from]") or request.args.get("filter[updated_at]")
            hi = request.args.get("filter[updated_at][to]")
            if lo:
                items = [n for n in items if n["updated_at"] >= int(lo)]
            if hi:
                items = [n for n in items if n["updated_at"] <= int(hi)]
            items = _ordered(items)
            rendered = [{**{k: v for k, v in n.items() if k != "entity"}, "group_id": 0,
                         "updated_by": n["created_by"], "account_id": self.store.account_id,
                         "_links": {"self": {"href": f"{self.base_url}/api/v4/{entity}/{n['entity_id']}"
                                                     f"/notes/{n['id']}"}}} for n in items]
        path = f"/api/v4/{entity}/notes" if entity_id is None else f"/api/v4/{entity}/{entity_id}/notes"
        return self._page(path, "notes", rendered)


_ID = re.compile(r"/\d+(?=/|$)")


def _with_retry_after(response: Response, seconds: int) -> Response:
    response.headers["Retry-After"] = str(seconds)
    return response


def _invalid(exc: Invalid) -> Response:
    return problem(400, "Bad Request", "Request validation failed", **{"validation-errors": exc.errors})


def _int_list(name: str) -> list[int]:
    raw = request.args.getlist(name + "[]") + request.args.getlist(name)
    out = []
    for value in raw:
        for part in str(value).split(","):
            if part.strip().isdigit():
                out.append(int(part))
    return out


def _withs() -> set[str]:
    return {w.strip() for w in (request.args.get("with") or "").split(",") if w.strip()}


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for key in ("id", "created_at", "updated_at"):
        direction = request.args.get(f"order[{key}]")
        if direction in ("asc", "desc"):
            return sorted(items, key=lambda x: (x[key], x["id"]), reverse=direction == "desc")
    return sorted(items, key=lambda x: x["id"])


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Served:
    """A running emulator: `.base_url`, `.emulator`, `.stats()`, `.counts()`."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.token = LONG_LIVED_TOKEN
        self._server = make_server("127.0.0.1", 0, emulator.app, threaded=True,
                                   request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        emulator.base_url = self.base_url
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=emulator._deliver_webhooks, daemon=True),
        ]

    def __enter__(self) -> "Served":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.emulator.release_stall()
        self.emulator._outbox.put(None)
        self._server.shutdown()
        self._server.server_close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emulator, name)

    def stats(self) -> dict[str, int]:
        with self.emulator.stats_lock:
            out = {"requests": 0, "rate_limited": 0, "forbidden": 0, "unauthorized": 0, **self.emulator.stats}
        out.update({f"oauth_{k}": v for k, v in self.emulator.oauth.stats.items()})
        return out

    def counts(self) -> dict[str, int]:
        return self.emulator.store.counts()


def serve(**options: Any) -> Served:
    return Served(Emulator(**options))
