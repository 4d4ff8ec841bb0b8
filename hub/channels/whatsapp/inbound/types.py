"""What a WhatsApp Cloud API webhook means, as plain values.

parse.py turns a raw body into these; ingest.py stores them. Nothing here touches the
database or the network. Field names follow Meta's where they exist.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union


@dataclass(frozen=True)
class WaError:
    code: int
    title: str
    message: str = ""
    details: str = ""
    href: str = ""


@dataclass(frozen=True)
class Route:
    """Which business number and account a change is about."""

    waba_id: str
    phone_number_id: str | None = None
    display_phone_number: str | None = None


@dataclass(frozen=True)
class WaContact:
    """An entry of value.contacts[]: the sender's profile."""

    wa_id: str | None
    user_id: str | None = None  # business-scoped user id (BSUID), 2026+
    parent_user_id: str | None = None
    name: str = ""
    username: str | None = None


@dataclass(frozen=True)
class Media:
    id: str
    mime_type: str = ""
    sha256: str = ""
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: bool = False
    animated: bool = False


@dataclass(frozen=True)
class InboundMessage:
    route: Route
    id: str  # wamid: the dedup key
    timestamp: datetime  # from the webhook (UTC), not receipt time
    type: str  # Meta's type; unknown types are kept as they came
    from_wa_id: str | None
    from_user_id: str | None
    contact: WaContact | None  # the matching value.contacts[] entry, if any
    text: str  # readable rendering for timelines and CRMs ("" when nothing to show)
    content: dict[str, Any]  # the type-specific object as sent (e.g. the "image" dict)
    media: Media | None = None
    reply_to: str | None = None  # context.id
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: dict[str, Any] | None = None
    referral: dict[str, Any] | None = None  # Click-to-WhatsApp ad data
    reaction_to: str | None = None  # reaction.message_id
    reaction_emoji: str | None = None  # "" or None = reaction removed
    errors: tuple[WaError, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    original_message_id: str | None = None  # revoke/edit: the wamid deleted or edited
    where: str = ""  # its place in the body: "entry[0].changes[0].value.messages[1]"
    # What had to change for it to be storable (storable.py), place by place.
    parse_errors: tuple[str, ...] = ()

    @property
    def opens_window(self) -> bool:
        """Does this message open or refresh the 24-hour customer service window?
        Conservative: only real user content (not reactions, system or unsupported)."""
        return self.type in WINDOW_TYPES


WINDOW_TYPES = frozenset(
    {"text", "image", "audio", "video", "document", "sticker", "location", "contacts",
     "interactive", "button", "order"}
)


@dataclass(frozen=True)
class Pricing:
    billable: bool | None
    pricing_model: str | None  # "CBP" | "PMP"
    type: str | None  # regular | free_customer_service | free_entry_point | ...
    category: str | None  # lower-case as sent; "authentication_international" normalised


@dataclass(frozen=True)
class StatusUpdate:
    route: Route
    message_id: str
    status: str  # sent | delivered | read | played | failed (others kept as sent)
    timestamp: datetime
    recipient_id: str | None
    recipient_user_id: str | None = None
    errors: tuple[WaError, ...] = ()
    pricing: Pricing | None = None
    conversation: dict[str, Any] | None = None  # id, expiration, origin.type
    biz_opaque_callback_data: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class TemplateComponents:
    """message_template_components_update: the template's texts after an edit."""

    body: str | None = None  # message_template_element
    header: str | None = None  # message_template_title (text headers only)
    footer: str | None = None  # message_template_footer
    buttons: tuple[dict[str, Any], ...] = ()  # message_template_buttons, as sent


@dataclass(frozen=True)
class TemplateEvent:
    """message_template_status_update / _quality_update / template_category_update /
    message_template_components_update."""

    route: Route
    field: str
    template_id: str
    name: str
    language: str
    event: str | None = None  # status events: APPROVED, REJECTED, ...
    reason: str | None = None
    category: str | None = None  # the category after this change, if known
    previous_category: str | None = None
    quality_score: str | None = None  # GREEN / YELLOW / RED / UNKNOWN
    previous_quality_score: str | None = None
    time: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # Human-readable why: rejection_info, other_info (pauses, locks), disable_info.
    detail: str | None = None
    # template_category_update advance notice: the change to `category` takes effect at
    # this time (it has NOT happened yet; previous_category is still in force). None for
    # a completed change.
    effective_at: datetime | None = None
    components: TemplateComponents | None = None


@dataclass(frozen=True)
class NumberEvent:
    """phone_number_quality_update, business_capability_update, account_update,
    phone_number_name_update, account_alerts: changes to a number or the account."""

    route: Route
    field: str
    event: str | None = None
    quality_rating: str | None = None
    messaging_limit: str | None = None  # TIER_* normalised from int or string forms
    throughput_level: str | None = None
    time: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    previous_messaging_limit: str | None = None  # old_limit, when Meta sends it


@dataclass(frozen=True)
class UserPreference:
    route: Route
    wa_id: str | None
    user_id: str | None
    category: str  # marketing_messages
    value: str  # stop | resume | signup
    detail: str = ""
    timestamp: datetime | None = None


@dataclass(frozen=True)
class ValueErrors:
    """value.errors[]: asynchronous errors not tied to one message."""

    route: Route
    errors: tuple[WaError, ...]


@dataclass(frozen=True)
class Unhandled:
    """A change field the hub does not act on; kept in the raw body, logged."""

    route: Route
    field: str
    raw: dict[str, Any] = field(default_factory=dict)


Item = Union[InboundMessage, StatusUpdate, TemplateEvent, NumberEvent, UserPreference, ValueErrors, Unhandled]


@dataclass(frozen=True)
class ParsedWebhook:
    items: tuple[Item, ...]  # in the order they appear in the body
    # Parts of the body that were refused, each "<place>: <fault>"; the rest is stored
    # and the raw webhook is marked failed (replayable) with these as its error.
    problems: tuple[str, ...] = ()
    # Values repaired to be storable (storable.py), each "<place>: <what changed>".
    notes: tuple[str, ...] = ()

    def of(self, cls: type) -> list[Any]:
        return [i for i in self.items if isinstance(i, cls)]
