"""A faithful local HubSpot CRM API (the parts the connector uses), for tests, benchmarks
and demos: objects (contacts, deals, communications, tasks) with single and batch
create, read, update and search, associations v4, pipelines, owners, properties, account
details, the 10-second rolling limit and the search limit (the same for every object) with
HubSpot's 429 bodies and X-HubSpot-RateLimit-* headers, outbound webhooks signed with the v3 signature, and OAuth (POST /oauth/v1/token:
single-use authorization codes, access tokens that expire, refresh tokens that do not
rotate and can be revoked by uninstalling the app).

It refuses what HubSpot refuses: unknown or read-only properties, invalid options,
association type ids that do not fit the objects, batches over 100, duplicate unique
values (409 "... already exists. Existing ID: n"). Chaos can be switched on: injected
5xx, 429 with Retry-After, and slow answers (the write happens, the answer comes late).

The routes live in one module per HubSpot API area, each with its `register(app, state)`:
emulator_limits (counts, chaos, rate limits, the token gate), emulator_oauth,
emulator_objects, emulator_search, emulator_associations, emulator_account and
emulator_inbox; the data and its rules in emulator_state, the error body in
emulator_errors. This module composes them and holds what tests drive: `serve` and
`EmulatorHandle`.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from typing import Any, Iterator

import requests
from flask import Flask
from werkzeug.serving import make_server

from connectors.hubspot import (emulator_account, emulator_associations, emulator_inbox, emulator_limits,
                                emulator_oauth, emulator_objects, emulator_search, signature)
from connectors.hubspot.emulator_requests import body, ok
from connectors.hubspot.emulator_state import (ALIASES, Options, State, now_iso, prop, queue_deal_change,
                                               queue_stage_change)

__all__ = ["EmulatorHandle", "Options", "State", "create_app", "serve"]


def create_app(state: State) -> Flask:
    app = Flask("hubspot-emulator")
    emulator_limits.register(app, state)
    emulator_oauth.register(app, state)
    emulator_objects.register(app, state)
    emulator_search.register(app, state)
    emulator_associations.register(app, state)
    emulator_account.register(app, state)
    emulator_inbox.register(app, state, ok, body)
    return app


class EmulatorHandle:
    """What tests and the benchmark hold: the base URL, state, counts and helpers."""

    def __init__(self, state: State, base_url: str):
        self.state = state
        self.base_url = base_url

    @property
    def token(self) -> str:
        return self.state.options.token

    @property
    def client_secret(self) -> str:
        return self.state.options.client_secret

    def stats(self) -> dict[str, Any]:
        c = self.state.counters
        with self.state.lock:
            return {"requests": c["requests"], "accepted": c["accepted"], "rate_limited": c["rate_limited"],
                    "search_rate_limited": c["search_rate_limited"], "injected_429": c["injected_429"],
                    "injected_5xx": c["injected_5xx"], "slow_answers": c["slow_answers"],
                    "by_endpoint": {k[5:]: v for k, v in c.items() if k.startswith("path:")}}

    def created(self, type_: str) -> int:
        with self.state.lock:
            return self.state.counters[f"created:{ALIASES[type_]}"]

    def counts(self) -> dict[str, int]:
        with self.state.lock:
            return {"contacts": len(self.state.objects["contacts"]), "deals": len(self.state.objects["deals"]),
                    "notes": len(self.state.objects["communications"])}

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, with the ids of the deals and contacts it is associated to."""
        with self.state.lock:
            out = []
            for record in sorted(self.state.objects["tasks"].values(), key=lambda r: int(r["id"])):
                linked = self.state.associations.get(("tasks", record["id"]), {})
                out.append({**json.loads(json.dumps(record)),
                            "deals": sorted(i for (t, i) in linked if t == "deals"),
                            "contacts": sorted(i for (t, i) in linked if t == "contacts")})
            return out

    def records(self, type_: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [json.loads(json.dumps(r)) for r in self.state.objects[ALIASES[type_]].values()]

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, int]:
        with self.state.lock:
            return {i: ty for (t, i), ty in self.state.associations.get((ALIASES[from_type], str(from_id)), {}).items()
                    if t == ALIASES[to_type]}

    @property
    def inbox(self) -> Any:
        """The Conversations inbox (emulator_inbox.InboxHandle)."""
        return emulator_inbox.InboxHandle(self.state)

    def set_chaos(self, **changes: Any) -> None:
        with self.state.lock:
            for key, value in changes.items():
                setattr(self.state.options, key, value)

    def revoke(self, token: str | None = None) -> None:
        with self.state.lock:
            self.state.tokens.discard(token or self.token)

    # -- OAuth ---------------------------------------------------------------------------------
    def issue_code(self, redirect_uri: str | None = None) -> str:
        """The code HubSpot appends to the redirect URI after a user installs the app."""
        code = str(uuid.uuid4())
        with self.state.lock:
            self.state.oauth_codes[code] = {"redirect_uri": redirect_uri or self.state.options.redirect_uri,
                                            "used": False}
        return code

    def expire_access_tokens(self) -> None:
        """Every OAuth access token issued so far expires now (as 30 minutes later)."""
        with self.state.lock:
            for entry in self.state.access_tokens.values():
                entry["expires_at"] = min(entry["expires_at"], time.time() - 1)

    def uninstall(self) -> None:
        """The app is uninstalled from the account: every refresh and access token dies."""
        with self.state.lock:
            for entry in list(self.state.refresh_tokens.values()) + list(self.state.access_tokens.values()):
                entry["revoked"] = True

    def live_refresh_tokens(self) -> list[str]:
        with self.state.lock:
            return sorted(t for t, e in self.state.refresh_tokens.items() if not e["revoked"])

    def oauth_stats(self) -> dict[str, int]:
        c = self.state.counters
        with self.state.lock:
            return {k: c[k] for k in ("oauth_code_exchanges", "oauth_refreshes", "oauth_refused",
                                      "oauth_dead_refresh_presented", "expired_token_rejections")}

    def add_contact(self, **properties: str) -> str:
        """A contact typed in by a salesperson (no request counted)."""
        with self.state.lock:
            id_ = self.state.new_id()
            stamp = now_iso()
            self.state.objects["contacts"][id_] = {"id": id_, "createdAt": stamp, "updatedAt": stamp,
                                                   "properties": {**properties, "hs_object_id": id_, "createdate": stamp}}
            return id_

    def add_property(self, object_type: str, name: str, *, unique: bool = False) -> None:
        type_ = ALIASES[object_type]
        with self.state.lock:
            self.state.properties[type_][name] = prop(name, name, group="", unique=unique)

    # -- outbound webhooks ---------------------------------------------------------------------------
    def subscribe(self, url: str, client_secret: str | None = None) -> None:
        with self.state.lock:
            self.state.webhook_targets.append((url, client_secret or self.client_secret))

    def move_deal(self, deal_id: str, stage: str, **props: str) -> None:
        """A salesperson drags the deal to another stage in HubSpot, perhaps setting other
        properties with it (amount="22500")."""
        with self.state.lock:
            record = self.state.objects["deals"][str(deal_id)]
            record["properties"].update(props)
            if record["properties"].get("dealstage") != stage:
                record["properties"]["dealstage"] = stage
                queue_stage_change(self.state, str(deal_id), stage)

    def hand_over(self, deal_id: str, owner_id: str) -> None:
        """A manager makes another owner responsible for the deal in HubSpot."""
        with self.state.lock:
            record = self.state.objects["deals"][str(deal_id)]
            if record["properties"].get("hubspot_owner_id") != owner_id:
                record["properties"]["hubspot_owner_id"] = owner_id
                queue_deal_change(self.state, str(deal_id), "hubspot_owner_id", owner_id)

    def deliver_webhooks(self, *, attempts: int = 3, timeout: float = 5.0) -> list[int]:
        """POST queued events (one signed array per target, as HubSpot batches them);
        retried while the target answers non-2xx. Returns the final status per target."""
        with self.state.lock:
            events, self.state.pending_webhooks = self.state.pending_webhooks, []
            targets = list(self.state.webhook_targets)
        statuses = []
        for url, secret in targets:
            if not events:
                break
            status = 0
            for attempt in range(attempts):
                body = json.dumps([{**e, "attemptNumber": attempt} for e in events]).encode()
                headers = {"Content-Type": "application/json",
                           **signature.headers(secret, "POST", url, body, int(time.time() * 1000))}
                try:
                    status = requests.post(url, data=body, headers=headers, timeout=timeout).status_code
                except requests.RequestException:
                    status = 0
                self.state.webhook_log.append({"url": url, "status": status, "events": len(events)})
                if 200 <= status < 300:
                    break
            statuses.append(status)
        return statuses


@contextlib.contextmanager
def serve(**options: Any) -> Iterator[EmulatorHandle]:
    """Run the emulator on 127.0.0.1 with an ephemeral port, in a thread."""
    state = State(Options(**options))
    server = make_server("127.0.0.1", 0, create_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="hubspot-emulator", daemon=True)
    thread.start()
    try:
        yield EmulatorHandle(state, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(5)
