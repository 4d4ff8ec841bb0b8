"""Generic outbound webhook: every event POSTed as signed JSON to one URL."""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from marshmallow import Schema, ValidationError, fields, validate, validates

from connectors.base import CheckResult, Connector, ConnectorContext, HubEvent, Outcome
from connectors.webhook import signing
from hub.shared.http import describe_response, parse_retry_after

RETRYABLE_STATUSES = frozenset({408, 425, 429})


class WebhookSettings(Schema):
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        metadata={
            "label": "Endpoint URL",
            "help": "Every event is POSTed here as JSON.",
            "placeholder": "https://example.com/hooks/whatsapp",
        },
    )
    secret = fields.String(
        required=True,
        metadata={
            "label": "Signing secret",
            "help": "Standard Webhooks secret (whsec_...); the receiver verifies "
                    "webhook-signature with it.",
            "secret": True,
            "placeholder": "whsec_...",
        },
    )
    concurrency = fields.Integer(
        load_default=4,
        validate=validate.Range(min=1, max=32),
        metadata={"label": "Parallel requests",
                  "help": "Events of different conversations sent at once; one conversation's "
                          "events always go one after another, in order."},
    )
    timeout_seconds = fields.Float(
        load_default=10.0,
        validate=validate.Range(min=1, max=60),
        metadata={"label": "Timeout (seconds)", "help": "A slower answer counts as a failure and is retried."},
    )

    @validates("secret")
    def _secret_usable(self, value: str, **_: Any) -> None:
        try:
            signing.secret_bytes(value)
        except signing.BadSecret as exc:
            raise ValidationError(str(exc)) from None


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def classify(response: requests.Response, now: Any, secrets: list[str]) -> Outcome:
    """2xx done; 408/425/429/5xx retry (Retry-After honoured); other answers dead."""
    described = describe_response(response, secrets)
    status = response.status_code
    if 200 <= status < 300:
        return Outcome.done(described)
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome.retry(
            f"HTTP {status}",
            retry_at=parse_retry_after(response.headers.get("Retry-After"), now),
            response=described,
        )
    if 300 <= status < 400:
        location = response.headers.get("Location", "?")
        return Outcome.dead(f"HTTP {status}: redirects are not followed (to {location})", response=described)
    return Outcome.dead(f"HTTP {status}: the receiver refused the event", response=described)


class WebhookConnector(Connector):
    kind = "webhook"
    title = "Generic webhook (Standard Webhooks)"
    Settings = WebhookSettings
    handles = None  # every event type

    def __init__(self, ctx: ConnectorContext):
        super().__init__(ctx)
        self._pool: ThreadPoolExecutor | None = None

    def _post(self, msg_id: str, body: bytes) -> requests.Response:
        now = self.ctx.clock()
        headers = {
            "Content-Type": "application/json",
            **signing.headers(self.settings["secret"], msg_id, int(now.timestamp()), body),
        }
        return self.ctx.http.post(
            self.settings["url"], data=body, headers=headers,
            timeout=self.settings.get("timeout_seconds", 10.0), allow_redirects=False,
        )

    def _send(self, msg_id: str, envelope: dict[str, Any]) -> Outcome:
        try:
            response = self._post(msg_id, encode(envelope))
        except requests.Timeout:
            return Outcome.retry("timed out waiting for the receiver")
        except requests.RequestException as exc:
            return Outcome.retry(f"connection failed: {type(exc).__name__}")
        return classify(response, self.ctx.clock(), [self.settings["secret"]])

    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        # webhook-id is the event id, stable across retries, so receivers can dedupe.
        # The worker never puts two events of one conversation in the same call, so
        # sending a call's events in parallel keeps every conversation in order.
        concurrency = min(self.settings.get("concurrency", 4), len(batch))
        if concurrency <= 1:
            return [self._send(event.id, event.envelope()) for event in batch]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.get("concurrency", 4),
                                            thread_name_prefix=f"webhook-{self.ctx.connector_id}")
        return list(self._pool.map(lambda e: self._send(e.id, e.envelope()), batch))

    def check(self) -> CheckResult:
        now = self.ctx.clock()
        ping = {
            "id": f"ping_{uuid.uuid4()}",
            "type": "ping",
            "version": 1,
            "occurred_at": now.isoformat().replace("+00:00", "Z"),
            "data": {"connector": self.ctx.name},
        }
        outcome = self._send(ping["id"], ping)
        if outcome.status == "done":
            return CheckResult(True, f"{self.settings['url']} accepted a signed ping",
                               {"response": outcome.response})
        return CheckResult(False, f"{self.settings['url']}: {outcome.error}",
                           {"response": outcome.response})
