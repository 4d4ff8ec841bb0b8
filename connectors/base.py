"""The connector contract and the registry of installed kinds.

A connector turns hub events into calls on some outside system (a CRM, a webhook
receiver). The hub owns the queue, retries, ordering and storage; a connector only says,
for each event of a batch, whether it is done, should be retried, or can never succeed.
Kinds are discovered through the `hub.connectors` entry point group, so a third party
can ship one as a package.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Callable, ClassVar, Literal, Protocol

import requests
from marshmallow import Schema

ENTRY_POINT_GROUP = "hub.connectors"


@dataclass(frozen=True)
class HubEvent:
    """An event as a connector sees it; `envelope()` is its stable JSON form."""

    id: str
    type: str
    version: int
    occurred_at: datetime
    data: dict[str, Any]
    ordering_key: str | None = None
    attempt: int = 1  # 1 on the first try; > 1 when an earlier try may have done part of it

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }


OutcomeStatus = Literal["done", "retry", "dead", "wait"]


@dataclass(frozen=True)
class Outcome:
    """What became of one event. `wait` postpones without counting against max age
    (the connector itself is unavailable, e.g. its token was revoked)."""

    status: OutcomeStatus
    error: str = ""
    retry_at: datetime | None = None
    response: dict[str, Any] | None = None

    @classmethod
    def done(cls, response: dict[str, Any] | None = None) -> "Outcome":
        return cls("done", response=response)

    @classmethod
    def retry(cls, error: str, *, retry_at: datetime | None = None,
              response: dict[str, Any] | None = None) -> "Outcome":
        return cls("retry", error=error, retry_at=retry_at, response=response)

    @classmethod
    def dead(cls, error: str, *, response: dict[str, Any] | None = None) -> "Outcome":
        return cls("dead", error=error, response=response)

    @classmethod
    def wait(cls, error: str, *, retry_at: datetime | None = None) -> "Outcome":
        return cls("wait", error=error, retry_at=retry_at)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class LinkStore(Protocol):
    """hub entity -> CRM id, persisted by the hub (crm_links)."""

    def get(self, entity_type: str, entity_id: str) -> str | None: ...

    def get_many(self, entity_type: str, entity_ids: list[str]) -> dict[str, str]: ...

    def put(self, entity_type: str, entity_id: str, crm_type: str, crm_id: str) -> str:
        """Store a link and return the CRM id now linked (an existing one wins)."""
        ...

    def put_many(self, entity_type: str, items: list[tuple[str, str, str]]) -> dict[str, str]:
        """Store (entity_id, crm_type, crm_id) links in one transaction; entity_id -> CRM id
        now linked (existing links win)."""
        ...

    def set_many(self, entity_type: str, items: list[tuple[str, str, str]]) -> None:
        """Store or replace links in one transaction (the newest wins): what a connector
        remembers of a CRM object that changes, such as the value it last wrote."""
        ...


class RateLimiter(Protocol):
    """A token bucket (or sliding window) shared by every worker process of one connector."""

    def take(self, tokens: float = 1.0) -> None:
        """Block until the tokens are taken."""
        ...

    def try_take(self, tokens: float = 1.0) -> float:
        """0 when taken, else the seconds to wait."""
        ...

    def penalise(self, seconds: float) -> None:
        """The service answered "too many requests": hold everyone back."""
        ...


SettingsUpdate = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class ConnectorContext:
    """What the hub hands a connector instance.

    `update_settings(fn)` runs fn(fresh settings) while holding a lock on this
    connector's row and stores the changes fn returns in the same transaction: the way to
    rotate OAuth tokens so two workers never both spend the same refresh token.
    `limiter(name, rate, burst)` gives a bucket shared by all workers of the connector;
    `window_limiter(name, limit, seconds)` a sliding window (at most `limit` requests in
    any rolling `seconds`), for services that count that way.
    `mark_health(ok, message)` records health shown in the admin.
    """

    connector_id: int
    name: str
    settings: dict[str, Any]
    links: LinkStore
    http: requests.Session
    clock: Callable[[], datetime]
    http_timeout: float = 10.0
    update_settings: Callable[[SettingsUpdate], dict[str, Any]] | None = None
    webhook_url: str = ""  # where the service should call the hub for this connector
    limiter: Callable[[str, float, float], RateLimiter] | None = None
    window_limiter: Callable[[str, int, float], RateLimiter] | None = None
    mark_health: Callable[[bool, str], None] | None = None


@dataclass(frozen=True)
class InboundRequest:
    """An HTTP request from the outside service, decoupled from the web framework."""

    method: str
    url: str  # full URL as received
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    form: dict[str, Any]  # parsed form body (nested keys kept as sent, e.g. "leads[status][0][id]")


class WebhookRejected(Exception):
    """handle_webhook refuses the request (bad signature, unknown account)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# Commands a connector asks the hub to carry out (CRM -> hub). The hub checks them against
# its own data (window, templates, opt-outs) before anything is sent.

@dataclass(frozen=True)
class SendTemplate:
    template: str
    language: str
    # Body variables in order ({{1}}, {{2}}, ...) or by name for named parameters.
    variables: list[str] | dict[str, str] = field(default_factory=list)
    conversation_id: int | None = None
    phone: str | None = None  # E.164, when the CRM only knows the phone
    channel_id: int | None = None
    reason: str = ""  # shown in the conversation, e.g. "deal entered stage Shipped"
    # The same key is carried out once per connector (CRMs resend their webhooks).
    idempotency_key: str | None = None


@dataclass(frozen=True)
class SendText:
    text: str
    conversation_id: int
    author: str = ""  # CRM user name, for the timeline
    # The same key is carried out once per connector (CRMs resend their webhooks).
    idempotency_key: str | None = None
    # The CRM's own id of the message typed there: stored as the connector's link
    # ("crm_message", hub message id) in the transaction that queues the message, so the
    # connector can report the message's WhatsApp statuses back to it.
    crm_message_id: str | None = None


@dataclass(frozen=True)
class AssignConversation:
    conversation_id: int
    assignee_email: str | None


@dataclass(frozen=True)
class CloseConversation:
    conversation_id: int
    reason: str = ""


@dataclass(frozen=True)
class ReportDealStage:
    """A deal moved in the CRM: the hub emits `deal.stage_changed` joined to the
    conversation and its lead source, so analytics destinations learn the outcome
    without knowing the CRM. `outcome` is "won", "lost" or "open" in the CRM's own
    terms (amoCRM 142/143, Bitrix24 semantics S/F, HubSpot hs_is_closed_won)."""

    deal_id: str
    stage: str
    outcome: Literal["won", "lost", "open"]
    conversation_id: int | None = None
    phone: str | None = None  # E.164, when the deal's conversation is not linked
    pipeline: str | None = None
    stage_name: str = ""
    amount: str | None = None  # a decimal as text, in `currency`
    currency: str | None = None
    # The same key is carried out once per connector (CRMs resend their webhooks).
    idempotency_key: str | None = None


Command = SendTemplate | SendText | AssignConversation | CloseConversation | ReportDealStage


class Connector:
    kind: ClassVar[str]
    title: ClassVar[str]
    Settings: ClassVar[type[Schema]]
    # Event types this kind acts on; None = all of them.
    handles: ClassVar[frozenset[str] | None] = None
    # Deliveries to claim per round when the kind batches across conversations (a CRM
    # batch API): a wave holds one event per conversation, so claiming more fills the
    # CRM's batches. None = the worker's batch_size.
    claim_size: ClassVar[int | None] = None
    # Entity types this kind keeps in the links store only for a while (intents, try
    # markers, seen webhooks): the retention job deletes them once they are old.
    scratch_links: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, ctx: ConnectorContext):
        self.ctx = ctx
        self.settings = ctx.settings

    def check(self) -> CheckResult:
        raise NotImplementedError

    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        """Return one Outcome per event, in the batch's order."""
        raise NotImplementedError

    # Optional, implemented by kinds that can:
    #
    # def choices(self) -> dict[str, list[tuple[str, str]]]
    #     Values for settings fields loaded from the service (pipelines, stages, users),
    #     as (value, label) pairs keyed by field name; the admin form offers them.
    # def preview(self, batch: list[HubEvent]) -> list[dict[str, Any]]
    #     The requests deliver() would make for these events, without sending anything
    #     (the admin's mapping preview): [{"method", "path", "body"}].
    # def pull(self, since: datetime) -> list[Command]
    #     Scheduled sync from the service (hub.crm.pull, every [scheduler]
    #     pull_minutes): what changed since then, as commands. Pulls overlap and may see
    #     what a webhook already brought, so each command must act once (the connector's
    #     own keys, as for webhooks).
    # def handle_webhook(self, request: InboundRequest) -> list[Command]
    #     The service calls the hub; raise WebhookRejected for unauthenticated calls.
    #     The URL may carry a path after the key (/webhooks/connectors/<key>/<more>),
    #     e.g. for services that append their own ids; `request.path` has it all.
    # def commands_done(self, commands: list[Command], results: list[dict]) -> None
    #     Called after the webhook's commands were carried out (no transaction open),
    #     one result per command ({"command", "ok", "detail", "message_id", "templates"}):
    #     to tell the service about refusals (e.g. the 24-hour window is closed).
    # def authorize_url(self, redirect_uri: str, state: str) -> str | None
    #     The service's authorization page for a "Connect" button in the admin (OAuth
    #     authorization code flow); None when the settings do not call for it.
    # def accept_authorization(self, params: dict[str, str], redirect_uri: str) -> dict
    #     The settings to store from the service's redirect back to the hub (the code);
    #     ValueError when the redirect refuses. The hub then runs check().
    # @staticmethod
    # def link_url(settings: dict, crm_type: str, crm_id: str) -> str | None
    #     Where a linked record opens in the service's own UI (the inbox links to it);
    #     `settings` as stored, secrets still encrypted.


class UnknownConnectorKind(LookupError):
    def __init__(self, kind: str, known: list[str]):
        super().__init__(
            f"unknown connector kind {kind!r}; installed kinds: {', '.join(known) or 'none'}"
        )
        self.kind = kind


class Registry:
    """Installed connector kinds: entry points, plus any registered by hand (tests)."""

    def __init__(self) -> None:
        self._kinds: dict[str, type[Connector]] | None = None
        self._extra: dict[str, type[Connector]] = {}

    def _load(self) -> dict[str, type[Connector]]:
        if self._kinds is None:
            kinds: dict[str, type[Connector]] = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                cls = ep.load()
                kinds[cls.kind] = cls
            self._kinds = kinds
        return {**self._kinds, **self._extra}

    def register(self, cls: type[Connector]) -> type[Connector]:
        self._extra[cls.kind] = cls
        return cls

    def unregister(self, kind: str) -> None:
        self._extra.pop(kind, None)

    def kinds(self) -> dict[str, type[Connector]]:
        return dict(sorted(self._load().items()))

    def get(self, kind: str) -> type[Connector]:
        kinds = self._load()
        try:
            return kinds[kind]
        except KeyError:
            raise UnknownConnectorKind(kind, sorted(kinds)) from None

    def find(self, kind: str) -> type[Connector] | None:
        return self._load().get(kind)


registry = Registry()


# While a connector's settings are validated, the hub puts its stored WhatsApp templates
# in marshmallow's context under this key ([{"name", "language", "status", "parameters"}],
# parameters: the number of positional body variables or the list of named ones), so a
# Settings schema can check rules like "stage X -> template T" against real templates.
TEMPLATES_CONTEXT_KEY = "whatsapp_templates"


def media_link(media: dict[str, Any] | None) -> str | None:
    """The link to a message's media that a CRM user can open: the signed download link
    the hub puts in events (docs/events.md), else the API path (needs a token)."""
    if not media:
        return None
    return media.get("download_url") or media.get("url")


def secret_fields(schema: type[Schema]) -> set[str]:
    """Names of the Settings fields marked secret=True (stored encrypted, never shown)."""
    return {name for name, f in schema._declared_fields.items() if f.metadata.get("secret")}
