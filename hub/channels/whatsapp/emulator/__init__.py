"""A faithful local fake of Meta's WhatsApp Cloud API (and 360dialog's relay of it).

Tests, benchmarks and `hub demo` use it instead of graph.facebook.com. It serves the
Graph paths a hub calls (send, media, templates, phone number; see app.py)
with Meta's bodies and error codes, keeps the state Meta keeps (24-hour windows,
throughput and pair limits, templates, media, opt-outs) and plays Meta's webhooks back
at the hub through a driver that signs, batches, duplicates, reorders and retries.

Start it and make a user write::

    emu = WhatsAppEmulator(clock=clock)          # clock() -> aware UTC datetime
    number = emu.add_number(phone_number_id="2200000000000002", waba_id="1100000000000001",
                            display_phone_number="15550001111", token="EAAG-test",
                            app_secret="s3cret", verify_token="vt",
                            webhook_url="http://hub.test/webhooks/whatsapp/main")
    emu.add_template("1100000000000001", name="order_update", language="en_US",
                     category="UTILITY", components=[{"type": "BODY", "text": "Order {{1}}"}])
    emu.driver.transport = FlaskClientTransport(hub_client)   # default: real HTTP POSTs
    with emu.serve() as server:                  # 127.0.0.1:<free port>, in a thread
        hub_config.graph_base = server.graph_url # ".../v25.0"; 360dialog: server.base_url
        ana = emu.customer(number, "15557654321", name="Ana")
        msg = ana.send_text("Hi!")               # queued; Ana's window is now open
        emu.flush()                              # signed POST(s) to the hub, retried on non-200
        ... the hub answers through server.graph_url ...
        emu.flush()                              # sent/delivered/read statuses (with pricing)

Or `emu.serve(auto_deliver=True)`: a background thread posts as soon as anything is
queued; `emu.driver.wait_idle()` waits for it.

What to read afterwards: `emu.sent` (SentMessage: request body, recipient, statuses,
pricing), `emu.inbound`, `emu.read_marks`, `emu.windows`, `emu.templates`, `emu.media`,
`emu.requests` (every API call with endpoint and status), `emu.driver.deliveries`
(every POST: bytes, headers, attempts with status/answer, delivered/dropped).

Shaping the world: `emu.recipient(wa_id, undeliverable=, reads=, marketing_opted_out=,
fail_after_delivery=)`, `emu.open_window(...)`, `emu.fail_next(count, status=, code=,
hang=, endpoint=)`, number attributes (`mps`, `quality_rating`, ...), and the webhook
emitters `set_template_status`, `set_template_quality`, `set_template_category`,
`set_quality`, `set_messaging_limit`, `set_throughput`, `emit_change`. Driver options
(batch_size, duplicate_ratio, out_of_order_ratio, skip_delivered_ratio, retry_delays,
sleep, concurrency, transport) are on `WebhookDriver`; `driver.verify(number)` runs the
GET hub.challenge handshake; `driver.post_payload(...)` posts a hand-made body.

Mailings: `emu.campaigns` (campaigns.py) holds Meta's rules for them, off by
default: the per-user marketing cap (131049), the marketing experiment (130472), the
portfolio's messaging limit (131048 past the tier) and template pausing with a quality
drop after a block rate.

Deliberate simplifications: one business portfolio; no group sends; the daily messaging
limit is enforced only when `emu.campaigns.enforce_messaging_limit` is set; Meta's undocumented details (retry
timing, 360dialog error body) are configurable or marked in the code.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import phonenumbers
from werkzeug.serving import WSGIRequestHandler, make_server

from hub.channels.whatsapp.emulator.app import create_app
from hub.channels.whatsapp.emulator.customers import Customer, ctwa_referral
from hub.channels.whatsapp.emulator.driver import FlaskClientTransport, WebhookDriver
from hub.channels.whatsapp.emulator.campaigns import CampaignRules
from hub.channels.whatsapp.emulator.errors import GraphError
from hub.channels.whatsapp.emulator.events import AccountEvents
from hub.channels.whatsapp.emulator.ops import GraphOperations
from hub.channels.whatsapp.emulator.state import (
    CLOUD, PROVIDERS, TEMPLATE_CATEGORIES, TEMPLATE_STATUSES, WINDOW, WINDOW_TYPES, FailureRule,
    MediaItem, Number, PairBucket, ReadMark, Recipient, RequestRecord, SentMessage, Template,
    ThroughputWindow,
)
from hub.channels.whatsapp.emulator.webhooks import (
    Update, bsuid_for, contact_entry, epoch, new_wamid,
)

DEFAULT_VERSION = "v25.0"
BSUID_SINCE = datetime(2026, 4, 1, tzinfo=timezone.utc)  # webhooks carry user_id from then
ENDPOINTS = frozenset({None, "messages", "media", "media_url", "download", "templates", "phone_number"})


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class EmulatorServer:
    base_url: str  # http://127.0.0.1:<port>; also the 360dialog host
    graph_url: str  # base_url + "/v25.0"
    emulator: "WhatsAppEmulator"


class _QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        import socket
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class WhatsAppEmulator(GraphOperations, AccountEvents):
    def __init__(self, *, clock: Callable[[], datetime] | None = None,
                 api_version: str = DEFAULT_VERSION, driver: WebhookDriver | None = None,
                 pair_limit: tuple[int, float] | None = (45, 6.0),
                 async_error_codes: tuple[int, ...] = (131026,), media_url_ttl: int = 300,
                 lookaside_base: str = "https://lookaside.fbsbx.com",
                 template_review: str = "pending", bsuid_since: datetime | None = BSUID_SINCE,
                 throughput_counts_inbound: bool = False, inbound_media_urls: bool = True):
        """pair_limit: (burst, seconds per message) per recipient, None to switch it off.
        async_error_codes: errors answered 200 and reported as a `failed` status instead
        (Meta does both; 131026 is async by default, add 131047/131050 to taste).
        template_review: what happens to created templates: pending (until
        set_template_status), approve or reject (immediately, with the webhook)."""
        if template_review not in ("pending", "approve", "reject"):
            raise ValueError("template_review must be pending, approve or reject")
        self.clock = clock or _utcnow
        self.api_version = api_version
        self.driver = driver or WebhookDriver(clock=self.clock)
        self.pair_limit = PairBucket(*pair_limit) if pair_limit else None
        self.async_error_codes = frozenset(async_error_codes)
        # Meta's rules for mailings (131049, 130472, messaging limit, block-rate pausing):
        # off until a test sets them (campaigns.py).
        self.campaigns = CampaignRules()
        self.media_url_ttl = media_url_ttl
        self.lookaside_base = lookaside_base.rstrip("/")
        self.template_review = template_review
        self.bsuid_since = bsuid_since
        self.throughput_counts_inbound = throughput_counts_inbound
        self.inbound_media_urls = inbound_media_urls
        self.lock = threading.RLock()
        self.numbers: dict[str, Number] = {}
        self.templates: dict[str, Template] = {}
        self.media: dict[str, MediaItem] = {}
        self.recipients: dict[str, Recipient] = {}
        self._by_user_id: dict[str, Recipient] = {}
        self.windows: dict[tuple[str, str], datetime] = {}  # (pnid, user key) -> last inbound
        self.ctwa_referrals: dict[tuple[str, str], datetime] = {}
        self.fep_windows: dict[tuple[str, str], tuple[datetime, str]] = {}
        self.inbound_ids: dict[str, set[str]] = {}
        self.inbound: list[dict[str, Any]] = []  # every message a customer sent, as posted
        self.sent: list[SentMessage] = []
        self.read_marks: list[ReadMark] = []
        self.requests: list[RequestRecord] = []
        self.failures: list[FailureRule] = []
        self.throughput = ThroughputWindow()
        self.base_url: str | None = None
        self._ids = itertools.count(int.from_bytes(os.urandom(3), "big") * 10**9 + 10**15)
        self._tpl_seq = itertools.count(1)
        self._url_key = os.urandom(16)
        self._closing = threading.Event()
        self._app = None

    # -- setup -----------------------------------------------------------------------

    def new_id(self) -> str:
        return str(next(self._ids))

    def add_number(self, *, phone_number_id: str, waba_id: str, display_phone_number: str,
                   provider: str = CLOUD, token: str | None = None, d360_key: str | None = None,
                   app_secret: str = "", verify_token: str = "", webhook_url: str | None = None,
                   webhook_headers: dict[str, str] | None = None, **attrs: Any) -> Number:
        """Register a business number; attrs: verified_name, quality_rating,
        messaging_limit, throughput_level, mps, status."""
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}")
        if provider == CLOUD and not token:
            raise ValueError("a cloud number needs a token (Bearer)")
        if provider != CLOUD and not d360_key:
            raise ValueError("a 360dialog number needs a d360_key")
        try:
            valid = display_phone_number.isdigit() and phonenumbers.parse("+" + display_phone_number)
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            raise ValueError(f"display_phone_number must be digits with the country code, "
                             f"not {display_phone_number!r}")
        number = Number(phone_number_id, waba_id, display_phone_number, provider, token, d360_key,
                        app_secret, verify_token, webhook_url, dict(webhook_headers or {}), **attrs)
        with self.lock:
            self.numbers[phone_number_id] = number
        return number

    def number(self, phone_number_id: str) -> Number:
        return self.numbers[phone_number_id]

    def add_template(self, waba_id: str, *, name: str, language: str, category: str,
                     components: list[dict[str, Any]], status: str = "APPROVED",
                     parameter_format: str = "POSITIONAL", id: str | None = None,
                     **attrs: Any) -> Template:
        """Seed a template (no webhook). attrs: sub_category, quality_score, rejected_reason."""
        if status not in TEMPLATE_STATUSES or category.upper() not in TEMPLATE_CATEGORIES:
            raise ValueError(f"bad template status {status!r} or category {category!r}")
        tpl = Template(id or self.new_id(), waba_id, name, language, category.upper(),
                       components, status, parameter_format.upper(), seq=next(self._tpl_seq), **attrs)
        with self.lock:
            self.templates[tpl.id] = tpl
        return tpl

    def template(self, waba_id: str, name: str, language: str) -> Template:
        for tpl in self.templates.values():
            if (tpl.waba_id, tpl.name, tpl.language) == (waba_id, name, language):
                return tpl
        raise KeyError(f"no template {name}/{language} in WABA {waba_id}")

    def recipient(self, wa_id: str | None = None, *, user_id: str | None = None,
                  **profile: Any) -> Recipient:
        """The user with this number (created on first use); profile updates behaviour:
        name, username, undeliverable, reads, marketing_opted_out, fail_after_delivery."""
        with self.lock:
            rec = self.recipients.get(wa_id or "") or (self._by_user_id.get(user_id) if user_id else None)
            if rec is None:
                if not wa_id and not user_id and not profile.get("username"):
                    raise ValueError("a recipient needs a wa_id, a user_id or a username")
                rec = Recipient(wa_id, user_id or self._bsuid(wa_id, profile.get("username")))
                self.recipients[rec.key] = rec
                self._by_user_id[rec.user_id] = rec
            for key, value in profile.items():
                if not hasattr(rec, key) or key in ("wa_id", "user_id"):
                    raise TypeError(f"unknown recipient attribute {key!r}")
                setattr(rec, key, value)
            return rec

    def add_unknown_recipient(self, wa_id: str) -> Recipient:
        """A number that is not on WhatsApp: sends to it fail with 131026."""
        return self.recipient(wa_id, undeliverable=True)

    def _bsuid(self, wa_id: str | None, username: str | None = None) -> str:
        country = "US"
        if wa_id:
            try:
                country = phonenumbers.region_code_for_number(phonenumbers.parse("+" + wa_id)) or "US"
            except phonenumbers.NumberParseException:
                pass
        return bsuid_for(country if country != "ZZ" else "US", f"emulator:{wa_id or username}")

    def customer(self, number: Number | str, wa_id: str | None = None, *, name: str = "",
                 username: str | None = None, user_id: str | None = None, **profile: Any) -> Customer:
        """A user who writes to `number`. wa_id=None with a username makes a username-only
        user: webhooks then carry only the BSUID (spec §2.4)."""
        num = number if isinstance(number, Number) else self.numbers[number]
        rec = self.recipient(wa_id, user_id=user_id, name=name, username=username, **profile)
        return Customer(self, num, rec)

    def fail_next(self, count: int = 1, *, status: int | None = None, code: int | None = None,
                  details: str | None = None, hang: float | None = None,
                  endpoint: str | None = None) -> FailureRule:
        """The next `count` calls (to `endpoint`: messages, media, media_url, download,
        templates, phone_number; None = any) answer `status`/`code` (default 500), or stall
        `hang` seconds first (then answer normally unless status/code is given too)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(e for e in ENDPOINTS if e)} or None")
        if status is None and code is None and not hang:
            status = 500
        rule = FailureRule(count, status, code, details, hang, endpoint)
        with self.lock:
            self.failures.append(rule)
        return rule

    def take_failure(self, endpoint: str) -> FailureRule | None:
        with self.lock:
            for rule in self.failures:
                if rule.count > 0 and rule.endpoint in (None, endpoint):
                    rule.count -= 1
                    if rule.count == 0:
                        self.failures.remove(rule)
                    return rule
        return None

    def apply_failure(self, rule: FailureRule) -> None:
        if rule.hang:
            self._closing.wait(rule.hang)
        if rule.code is None and rule.status is None:
            return  # a pure stall: answer normally afterwards
        code = rule.code if rule.code is not None else (2 if rule.status == 503 else 1)
        raise GraphError(code, rule.details, http_status=rule.status)

    # -- windows and inbound ---------------------------------------------------------

    def window_open(self, phone_number_id: str, user: str, at: datetime | None = None) -> bool:
        last = self.windows.get((phone_number_id, user))
        return last is not None and (at or self.clock()) < last + WINDOW

    def open_window(self, phone_number_id: str, user: str, at: datetime | None = None) -> None:
        """Pretend the user wrote at `at` (default now) without sending a webhook."""
        with self.lock:
            self.windows[(phone_number_id, user)] = at or self.clock()

    def _bsuid_on(self, at: datetime) -> bool:
        return self.bsuid_since is not None and at >= self.bsuid_since

    def receive(self, number: Number, rec: Recipient, content: dict[str, Any], *,
                with_contact: bool = True) -> dict[str, Any]:
        """Register a message the user sends and queue its webhook (see Customer)."""
        with self.lock:
            now = self.clock()
            bsuid = rec.user_id if (self._bsuid_on(now) or not rec.wa_id) else None
            item: dict[str, Any] = {}
            if "context" in content:
                item["context"] = content["context"]
            if rec.wa_id:
                item["from"] = rec.wa_id
            if bsuid:
                item["from_user_id"] = bsuid
            item["id"] = new_wamid(rec.wa_id)
            item["timestamp"] = str(epoch(now))
            item.update({k: v for k, v in content.items() if k != "context"})
            key = (number.phone_number_id, rec.key)
            if item["type"] in WINDOW_TYPES:
                self.windows[key] = now
            if "referral" in item:
                self.ctwa_referrals[key] = now
            if self.throughput_counts_inbound:
                self.throughput.record(number.phone_number_id, now)
            self.inbound_ids.setdefault(number.phone_number_id, set()).add(item["id"])
            self.inbound.append(item)
            contact = contact_entry(rec.wa_id, bsuid, rec.name, rec.username) if with_contact else None
        self.driver.enqueue([Update(number, "messages", "message", item, contact)])
        return item

    def set_marketing_preference(self, number: Number, rec: Recipient, value: str) -> dict[str, Any]:
        with self.lock:
            rec.marketing_opted_out = value == "stop"
            pref: dict[str, Any] = {}
            if rec.wa_id:
                pref["wa_id"] = rec.wa_id
            if self._bsuid_on(self.clock()) or not rec.wa_id:
                pref["user_id"] = rec.user_id
            pref.update({"category": "marketing_messages", "value": value,
                         "detail": "User requested to stop marketing messages" if value == "stop"
                         else "User requested to resume marketing messages",
                         "timestamp": epoch(self.clock())})
        self.driver.enqueue([Update(number, "user_preferences", "user_preference", pref)])
        return pref

    # -- media store -----------------------------------------------------------------

    def _store_media(self, number: Number, data: bytes, mime_type: str, origin: str,
                     filename: str | None) -> MediaItem:
        now = self.clock()
        digest = hashlib.sha256(data).digest()
        item = MediaItem(self.new_id(), number.phone_number_id, number.waba_id, data, mime_type,
                         digest.hex(), base64.b64encode(digest).decode(), now,
                         now + timedelta(days=7 if origin == "inbound" else 30), origin, filename)
        self.media[item.id] = item
        return item

    def store_inbound_media(self, number: Number, data: bytes, mime_type: str,
                            filename: str | None = None) -> MediaItem:
        with self.lock:
            return self._store_media(number, data, mime_type, "inbound", filename)

    def inbound_media_url(self, media: MediaItem) -> str | None:
        """The `url` newer inbound media webhooks carry (None when switched off)."""
        if not self.inbound_media_urls:
            return None
        return self.media_url(media, self.base_url or self.lookaside_base)

    # -- inspection ------------------------------------------------------------------

    def sent_to(self, user: str) -> list[SentMessage]:
        return [m for m in self.sent if user in (m.recipient.wa_id, m.recipient.user_id)]

    def flush(self):
        """Post every queued webhook now (see WebhookDriver.flush)."""
        return self.driver.flush()

    # -- HTTP ------------------------------------------------------------------------

    @property
    def app(self):
        if self._app is None:
            self._app = create_app(self)
        return self._app

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0, *,
              auto_deliver: bool = False) -> Iterator[EmulatorServer]:
        """Run the API on host:port (0 = a free port) in a thread until the block ends."""
        server = make_server(host, port, self.app, threaded=True, request_handler=_QuietHandler)
        base = f"http://{host}:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                                  name="whatsapp-emulator", daemon=True)
        self._closing.clear()
        thread.start()
        self.base_url = base
        if auto_deliver:
            self.driver.start()
        try:
            yield EmulatorServer(base, f"{base}/{self.api_version}", self)
        finally:
            self._closing.set()
            if auto_deliver:
                self.driver.stop()
            server.shutdown()
            server.server_close()
            thread.join()
            self.base_url = None


__all__ = ["WhatsAppEmulator", "EmulatorServer", "Customer", "WebhookDriver", "FlaskClientTransport",
           "GraphError", "Number", "Template", "Recipient", "SentMessage", "MediaItem",
           "create_app", "ctwa_referral", "DEFAULT_VERSION"]
