"""The channel contract: what the hub needs of a messaging channel, and nothing more.

WhatsApp, Telegram and Instagram implement it. Everything above the channels
(the inbox, the send API, CRM commands, workers and the scheduler; later routing,
automations, broadcasts and reports) reaches a channel only through a ChannelKind:
it receives (and, where the channel has one, verifies the subscription of) webhooks,
parses them into the hub's message types, fetches a message's media, lists the
templates an operator may send and reads their variables and text, queues outgoing
messages under the channel's own rules, says whether a conversation's window is open
(or that the channel has none), what it can carry (capabilities), how fast a number
may send, which background work it needs, and which emulator it is tested against.

Refusals are channel-neutral (SendRefused and its kinds): the API answers them with
their `status` and `code`, e.g. 409 window_closed naming what could be sent instead.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from hub.channels.webhook_cache import WebhookCache
    from hub.models import Message
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault


class MediaUnavailable(Exception):
    """A message's file cannot be had (ChannelKind.fetch_media); `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str
    filename: str


class SendRefused(Exception):
    """The message cannot be sent; `code` is machine-readable, the text is for people."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.details = details


class WindowClosed(SendRefused):
    status = 409
    code = "window_closed"


class OptedOut(SendRefused):
    status = 409
    code = "opted_out"


class NotFound(SendRefused):
    status = 404
    code = "not_found"


class Unreachable(SendRefused):
    """The channel will not carry messages to this person (e.g. they blocked the bot)."""

    status = 409
    code = "unreachable"


class TemplateRefused(SendRefused):
    status = 422
    code = "template_invalid"


@dataclass(frozen=True)
class Capabilities:
    """What a channel can carry, so that callers offer only that."""

    kinds: frozenset[str]  # message kinds it sends ("text", "image", "interactive", "template", ...)
    media: frozenset[str] = frozenset()  # media kinds among them
    buttons: int = 0  # reply buttons in one message (0: none)
    list_rows: int = 0  # rows of a list message (0: none)
    templates: bool = False  # pre-approved templates, the way to write after the window
    reactions: bool = False
    read_receipts: bool = False
    max_text: int = 4096  # characters in one text message
    # Free-form messages only inside a customer-service window (WhatsApp's 24 hours);
    # False: none (Telegram), window() then says WindowState.none().
    window: bool = True
    # How long the window stays open after the customer's last message (with `window`).
    window_length: timedelta = timedelta(hours=24)
    # The channel reports delivered (and, with read_receipts, read); False: a sent
    # message stays "sent" (Telegram).
    delivery_receipts: bool = True
    # Quick replies offered under one message (0: none; Instagram: 13).
    quick_replies: int = 0
    # How long after the window closes a person (never a bot) may still reply
    # (Instagram's HUMAN_AGENT tag: 7 days); None: nobody may.
    human_agent_window: timedelta | None = None

    def supports(self, kind: str) -> bool:
        return kind in self.kinds


@dataclass(frozen=True)
class WindowState:
    """Where a conversation stands with the channel's customer-service window.

    `applies` False: the channel has no window (anything may be sent at any time).
    Otherwise free-form messages go only while `open`; after `closes_at`, only what
    `after_close` names (e.g. "template"; "human_agent": a person's reply until
    `human_agent_until`)."""

    applies: bool
    open: bool
    closes_at: datetime | None = None
    closing_soon: bool = False
    after_close: str | None = None
    human_agent_until: datetime | None = None

    def open_for(self, now: datetime, *, human: bool) -> bool:
        """May a free-form message go at `now` (written by a person when `human`)?"""
        if self.open:
            return True
        return human and self.human_agent_until is not None and now < self.human_agent_until

    @classmethod
    def none(cls) -> "WindowState":
        return cls(applies=False, open=True)


@dataclass(frozen=True)
class TemplateInput:
    """A template to send, for channels that have them: name, language, parameters.

    body: list of values (positional) or {name: value} (named); a value is a string or a
    Meta parameter object ({"type": "currency", ...}). header: a string (text header) or
    {"type": "image", "image": {"link"|"id": ...}} etc. buttons: [{"index": 0,
    "sub_type": "url", "text": "order/42"} | {"index": 1, "sub_type": "quick_reply",
    "payload": "..."} | {"index": 2, "sub_type": "copy_code", "coupon_code": "..."}].
    """

    name: str
    language: str
    body: list[Any] | dict[str, Any] | None = None
    header: Any = None
    buttons: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: to a conversation, or to a number on a channel."""

    kind: str
    content: dict[str, Any] | None = None
    template: TemplateInput | None = None
    conversation_id: int | None = None
    channel_id: int | None = None
    to: str | None = None
    reply_to: str | None = None
    author_id: int | None = None
    # A person wrote it without being a hub user (a reply typed in the CRM): like
    # author_id, it may go where only people may write (Instagram's HUMAN_AGENT tag).
    by_person: bool = False

    @property
    def human(self) -> bool:
        return self.author_id is not None or self.by_person


@dataclass(frozen=True)
class Inbound:
    """An inbound webhook request as the channel sees it."""

    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class WebhookAnswer:
    """What the hub answers an inbound webhook request with."""

    status: int
    body: str
    content_type: str = "text/plain"


@dataclass
class Background:
    """Work a channel needs done by workers: each source does one round and says how
    much it did (0: idle)."""

    sources: list[Callable[[], int]] = field(default_factory=list)


class ChannelKind(ABC):
    """One kind of messaging channel, made with the hub's config (None: defaults);
    stateless apart from those settings, so cheap to make per use."""

    kind: ClassVar[str]  # "whatsapp": the name in URLs, rows and the registry
    title: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    # The raw-webhook processor (hub.events.raw_webhooks) that parses and applies its bodies.
    source: ClassVar[str]
    # Where its emulator lives (a module path): for tests, benchmarks and `hub demo`
    # only; production code never imports it.
    emulator: ClassVar[str]

    def __init__(self, config: Any = None):
        self.config = config

    @abstractmethod
    def authentic(self, channel: Any, request: Inbound) -> bool:
        """Is this inbound request from the channel (signature, token)?"""

    @abstractmethod
    def parse(self, body: bytes) -> Any:
        """The body as the hub's message types (raises hub.events.raw_webhooks.PayloadError)."""

    @abstractmethod
    def window(self, conversation: Any, now: datetime) -> WindowState:
        """The conversation's window under this channel's rules."""

    @abstractmethod
    def queue(self, session: Session, outgoing: Outgoing, *, now: datetime) -> "Message":
        """Queue a message in the caller's transaction under the channel's rules (raises
        SendRefused); workers send it."""

    @abstractmethod
    def messages_per_second(self, channel: Any) -> float:
        """How fast one number may send."""

    @abstractmethod
    def fetch_media(self, runtime: "Runtime", channel: Any, media: dict[str, Any], message_id: int) -> "Media":
        """A received message's file (`media`: its stored media part), fetched fresh from
        the channel (raises MediaUnavailable)."""

    @abstractmethod
    def webhook_cache(self, vault: "Vault") -> "WebhookCache[Any]":
        """A web process's copies of this kind's channels by webhook URL key
        (hub.channels.webhook_cache), made once per app."""

    @abstractmethod
    def receive_webhook(self, runtime: "Runtime", key: str, request: Inbound, now: datetime,
                        cache: "WebhookCache[Any] | None" = None) -> WebhookAnswer:
        """POST /webhooks/<kind>/<key>: check the request is the channel's, then keep and
        apply its body in one transaction (raises when the database fails, so the
        channel retries)."""

    def verify_webhook(self, runtime: "Runtime", key: str, args: Mapping[str, str]) -> WebhookAnswer | None:
        """GET /webhooks/<kind>/<key>: the subscription handshake; None: the channel has none."""
        return None

    def usable_templates(self, session: Session, channel: Any) -> list[Any]:
        """The templates an operator may send on `channel` (none where the kind has none)."""
        return []

    def template_variables(self, template: Any) -> int | list[str]:
        """The body variables of one of its templates: how many positional ones, or the
        names of its named ones (0 where the kind has no templates)."""
        return 0

    def template_text(self, template: Any) -> str:
        """One of its templates' body as people read it, placeholders and all."""
        return ""

    def background(self, runtime: "Runtime", owner: str) -> Background:
        """The worker sources this channel needs (sending queued messages, syncs)."""
        return Background()
