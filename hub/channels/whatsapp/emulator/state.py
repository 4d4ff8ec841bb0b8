"""What the WhatsApp emulator remembers, as plain records a test can read.

Numbers, templates, media, recipients, sent messages and the two throttles Meta applies
(the number's messages per second and the per-recipient pair limit). Everything is
keyed by strings exactly as they travel on the wire; times come from the emulator's
injectable clock, never from the wall.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CLOUD = "cloud"
D360 = "360dialog"
PROVIDERS = (CLOUD, D360)

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

TEMPLATE_STATUSES = (
    "APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "FLAGGED", "REINSTATED",
    "IN_APPEAL", "PENDING_DELETION", "DELETED", "LIMIT_EXCEEDED", "LOCKED", "ARCHIVED",
    "UNARCHIVED",
)
TEMPLATE_CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")

# Messages a user sends that open or refresh the customer service window (spec §10.1,
# conservative: reactions, system and unsupported messages do not).
WINDOW_TYPES = frozenset(
    {"text", "image", "audio", "video", "document", "sticker", "location", "contacts",
     "interactive", "button", "order"}
)
WINDOW = timedelta(hours=24)
FEP_WINDOW = timedelta(hours=72)


@dataclass
class Number:
    """A business phone number as Meta (or 360dialog) knows it."""

    phone_number_id: str
    waba_id: str
    display_phone_number: str  # digits only, as in webhook metadata
    provider: str = CLOUD
    token: str | None = None  # Bearer token (cloud)
    d360_key: str | None = None  # D360-API-KEY (360dialog)
    app_secret: str = ""  # signs webhooks (cloud)
    verify_token: str = ""  # GET handshake
    webhook_url: str | None = None
    webhook_headers: dict[str, str] = field(default_factory=dict)  # 360dialog custom headers
    verified_name: str = "Hub Demo"
    quality_rating: str = "GREEN"
    messaging_limit: str = "TIER_2K"  # whatsapp_business_manager_messaging_limit
    throughput_level: str = "STANDARD"
    mps: int = 80  # messages per second before 130429
    status: str = "CONNECTED"

    @property
    def is_360dialog(self) -> bool:
        return self.provider == D360


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str = "APPROVED"
    parameter_format: str = "POSITIONAL"  # or NAMED
    sub_category: str | None = None
    quality_score: str = "UNKNOWN"
    rejected_reason: str = "NONE"
    seq: int = 0  # creation order; the paging cursors encode it

    def component(self, kind: str) -> dict[str, Any] | None:
        for comp in self.components:
            if str(comp.get("type", "")).upper() == kind:
                return comp
        return None

    def buttons(self) -> list[dict[str, Any]]:
        comp = self.component("BUTTONS")
        return list(comp.get("buttons") or []) if comp else []

    def graph(self, fields: list[str], now: datetime) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "components": self.components,
            "parameter_format": self.parameter_format,
            "quality_score": {"score": self.quality_score, "date": int(now.timestamp())},
            "rejected_reason": self.rejected_reason,
        }
        if self.sub_category:
            full["sub_category"] = self.sub_category
        out = {"id": self.id}
        out.update({k: full[k] for k in fields if k in full})
        return out


TEMPLATE_FIELDS = ("id", "name", "language", "status", "category", "components",
                   "parameter_format", "quality_score", "rejected_reason", "sub_category")
TEMPLATE_DEFAULT_FIELDS = ["name", "parameter_format", "components", "language", "status",
                           "category", "id"]


def placeholders(text: str | None) -> list[str]:
    """Distinct variable names of a template text, in order of first appearance."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


@dataclass
class MediaItem:
    id: str
    phone_number_id: str
    waba_id: str
    data: bytes
    mime_type: str
    sha256_hex: str  # as GET /{media-id} reports it
    sha256_b64: str  # as inbound webhooks carry it
    created_at: datetime
    expires_at: datetime  # 7 days for inbound media, 30 days for uploads
    origin: str  # "inbound" | "upload"
    filename: str | None = None
    deleted: bool = False

    def alive(self, now: datetime) -> bool:
        return not self.deleted and now < self.expires_at


@dataclass
class Recipient:
    """A WhatsApp user and how they behave towards the business."""

    wa_id: str | None  # None for a username-only user who hides the phone
    user_id: str  # business-scoped user id (BSUID)
    name: str = ""
    username: str | None = None
    undeliverable: bool = False  # not on WhatsApp / old client: 131026
    reads: bool = True  # produces `read` statuses
    marketing_opted_out: bool = False  # 131050 for marketing templates
    fail_after_delivery: int | None = None  # multi-device: `failed` with this code after `delivered`

    @property
    def key(self) -> str:
        return self.wa_id or self.user_id


@dataclass
class SentMessage:
    """One accepted POST /messages (or 360dialog /messages), with what followed."""

    id: str
    phone_number_id: str
    to: str  # as the client wrote it (`to` or `recipient`)
    recipient: Recipient
    type: str
    body: dict[str, Any]  # the request body as sent
    at: datetime
    template: Template | None = None
    pricing: dict[str, Any] | None = None
    error_code: int | None = None  # set when accepted but failed asynchronously
    statuses: list[str] = field(default_factory=list)  # queued status webhooks, in order


@dataclass
class ReadMark:
    phone_number_id: str
    message_id: str
    typing_indicator: bool
    at: datetime


@dataclass
class FailureRule:
    """Injected trouble for the next `count` matching calls."""

    count: int
    status: int | None = None  # None: the code's usual HTTP status
    code: int | None = None
    details: str | None = None
    hang: float | None = None  # seconds to stall before answering
    endpoint: str | None = None  # messages | media | media_url | download | templates | phone_number


@dataclass
class RequestRecord:
    method: str
    path: str
    endpoint: str
    status: int
    body: Any = None  # parsed JSON body when there was one


class ThroughputWindow:
    """Messages per second per number, counted in a sliding second (spec §8.1)."""

    def __init__(self) -> None:
        self._times: dict[str, deque[datetime]] = {}

    def _live(self, key: str, now: datetime) -> deque[datetime]:
        times = self._times.setdefault(key, deque())
        while times and now - times[0] >= timedelta(seconds=1):
            times.popleft()
        return times

    def full(self, key: str, now: datetime, limit: int) -> bool:
        return len(self._live(key, now)) >= limit

    def record(self, key: str, now: datetime) -> None:
        self._live(key, now).append(now)


class PairBucket:
    """Per (number, recipient) token bucket: one message per `interval` seconds with bursts
    up to `burst` borrowed from future quota (spec §8.2)."""

    def __init__(self, burst: int, interval: float):
        if burst < 1 or interval <= 0:
            raise ValueError("pair limit needs burst >= 1 and interval > 0")
        self.burst = burst
        self.interval = interval
        self._state: dict[tuple[str, str], tuple[float, datetime]] = {}

    def _tokens(self, key: tuple[str, str], now: datetime) -> float:
        tokens, at = self._state.get(key, (float(self.burst), now))
        elapsed = max(0.0, (now - at).total_seconds())
        return min(float(self.burst), tokens + elapsed / self.interval)

    def allows(self, key: tuple[str, str], now: datetime) -> bool:
        return self._tokens(key, now) >= 1.0

    def take(self, key: tuple[str, str], now: datetime) -> None:
        self._state[key] = (self._tokens(key, now) - 1.0, now)
