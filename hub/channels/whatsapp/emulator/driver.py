"""Posts the emulator's webhooks to a hub the way Meta does (spec §1, §13).

The body is serialised once (escaped unicode, "/" as "\\/"), signed over those exact
bytes with the number's app secret (`X-Hub-Signature-256`; 360dialog numbers get their
configured custom headers instead) and sent as is. Updates are batched into one POST
(up to `batch_size`, capped at Meta's 1000), optionally duplicated and reordered, and
retried on anything but HTTP 200 on a compressed schedule. Every attempt is recorded.

Posting happens on `flush()` (deterministic tests) or in a background thread
(`start()`). The transport is injectable: any callable(url, body, headers) returning a
status (or a response with `.status_code`); `FlaskClientTransport` posts into a Flask
test client without a network.
"""
from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode, urlsplit

import requests

from hub.channels.whatsapp.emulator.state import Number
from hub.channels.whatsapp.emulator.webhooks import Update, build_envelope
from hub.shared.security import hmac_sha256_hex

MAX_BATCH = 1000  # Meta: "a maximum of 1000 updates" per POST
# Meta retries "immediately, then with decreasing frequency" for up to 7 days; tests get
# the same shape in well under a second.
DEFAULT_RETRY_DELAYS = (0.0, 0.05, 0.1, 0.2, 0.4)

# callable(url, body, headers) -> status code | (status, body) | response with .status_code
Transport = Callable[[str, bytes, Mapping[str, str]], Any]


def encode_body(payload: Any, *, escape_slashes: bool = True) -> bytes:
    """Meta's rendering: compact, non-ASCII as lowercase \\uXXXX, "/" escaped as "\\/"."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    if escape_slashes:
        text = text.replace("/", "\\/")  # only ever inside strings: "/" is not JSON syntax
    return text.encode("ascii")


def meta_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac_sha256_hex(app_secret.encode(), body)


def webhook_headers(number: Number, body: bytes, *, app_secret: str | None = None,
                    sha1_header: bool = False) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    if number.is_360dialog:
        headers.update(number.webhook_headers)
        return headers
    secret = number.app_secret if app_secret is None else app_secret
    if not secret:
        raise ValueError(f"number {number.phone_number_id} has no app_secret to sign webhooks with")
    headers["X-Hub-Signature-256"] = meta_signature(secret, body)
    if sha1_header:
        import hashlib
        import hmac
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return headers


def _answer_of(result: Any) -> tuple[int, str | None]:
    """A transport may return a status, (status, body) or a response object."""
    if isinstance(result, int):
        return result, None
    if isinstance(result, tuple):
        return int(result[0]), (None if len(result) < 2 else str(result[1]))
    text = getattr(result, "text", None)
    if text is None and hasattr(result, "get_data"):
        text = result.get_data(as_text=True)
    return int(result.status_code), text


class RequestsTransport:
    """The default: real HTTP with `requests` (one pooled session)."""

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        return self._session().post(url, data=body, headers=dict(headers), timeout=self.timeout)

    def get(self, url: str) -> tuple[int, str]:
        resp = self._session().get(url, timeout=self.timeout)
        return resp.status_code, resp.text


class FlaskClientTransport:
    """Posts into a Flask test client: only the path and query of the URL are used."""

    def __init__(self, client: Any):
        self.client = client

    @staticmethod
    def _target(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> Any:
        return self.client.post(self._target(url), data=body, headers=dict(headers))

    def get(self, url: str) -> tuple[int, str]:
        resp = self.client.get(self._target(url))
        return resp.status_code, resp.get_data(as_text=True)


@dataclass
class Attempt:
    delivery_id: int
    number: int  # 1 = first try
    status: int | None  # None when the transport raised (connection refused, timeout)
    error: str | None
    at: datetime
    answer: str | None = None  # the response body (first 2000 characters), when known
    elapsed: float = 0.0  # wall seconds the transport took (for benchmarks, not tests)


@dataclass
class Delivery:
    """One webhook POST and everything that happened to it."""

    id: int
    url: str
    body: bytes
    headers: dict[str, str]
    updates: list[Update]
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = "pending"  # delivered | dropped

    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class Handshake:
    url: str
    status: int
    body: str
    challenge: str

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body == self.challenge


class WebhookDriver:
    def __init__(self, *, clock: Callable[[], datetime], transport: Transport | None = None,
                 batch_size: int = 1, duplicate_ratio: float = 0.0,
                 out_of_order_ratio: float = 0.0, skip_delivered_ratio: float = 0.0,
                 retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = 0,
                 escape_slashes: bool = True, sha1_header: bool = False, concurrency: int = 1):
        """batch_size: updates per POST (1..1000). duplicate_ratio: share of updates sent a
        second time in a later POST (exact count, seeded). out_of_order_ratio: share of
        messages whose `read` goes out before `delivered`; skip_delivered_ratio: share whose
        `delivered` is never sent (pricing moves to `read`). retry_delays: seconds before
        each retry after a non-200; then the delivery is dropped."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH} (Meta's cap), not {batch_size}")
        for name, ratio in (("duplicate_ratio", duplicate_ratio),
                            ("out_of_order_ratio", out_of_order_ratio),
                            ("skip_delivered_ratio", skip_delivered_ratio)):
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {ratio}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clock = clock
        self.transport: Transport = transport or RequestsTransport()
        self.batch_size = batch_size
        self.duplicate_ratio = duplicate_ratio
        self.out_of_order_ratio = out_of_order_ratio
        self.skip_delivered_ratio = skip_delivered_ratio
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.sleep = sleep
        self.escape_slashes = escape_slashes
        self.sha1_header = sha1_header
        self.concurrency = concurrency
        self.deliveries: list[Delivery] = []
        self.errors: list[BaseException] = []  # background flush failures
        self._rng = random.Random(seed)
        self._pending: list[Update] = []
        self._cond = threading.Condition()
        self._flush_lock = threading.Lock()
        self._busy = False
        self._ids = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- queue -----------------------------------------------------------------------

    def enqueue(self, updates: Iterable[Update]) -> None:
        with self._cond:
            self._pending.extend(updates)
            self._cond.notify_all()

    @property
    def pending(self) -> list[Update]:
        with self._cond:
            return list(self._pending)

    @property
    def attempts(self) -> list[Attempt]:
        return [a for d in list(self.deliveries) for a in d.attempts]

    def flush(self) -> list[Delivery]:
        """Post everything queued now; returns the deliveries made (after retries)."""
        with self._flush_lock:
            with self._cond:
                homeless = {u.number.phone_number_id for u in self._pending if not u.number.webhook_url}
                if homeless:
                    raise RuntimeError(f"numbers without a webhook_url: {', '.join(sorted(homeless))}")
                batch, self._pending = self._pending, []
                self._busy = True
            try:
                if not batch:
                    return []
                posts = self._posts(self._shape(batch))
                if self.concurrency == 1 or len(posts) == 1:
                    return [self._deliver(*p) for p in posts]
                with ThreadPoolExecutor(self.concurrency) as pool:
                    return list(pool.map(lambda p: self._deliver(*p), posts))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # -- shaping ---------------------------------------------------------------------

    def _shape(self, updates: list[Update]) -> list[Update]:
        out = list(updates)
        groups: dict[str, dict[str, int]] = {}
        for i, upd in enumerate(out):
            if upd.kind == "status" and upd.group:
                groups.setdefault(upd.group, {})[upd.item.get("status", "")] = i
        dropped: set[int] = set()
        for positions in groups.values():
            if "delivered" not in positions or "read" not in positions:
                continue
            d, r = positions["delivered"], positions["read"]
            if self.skip_delivered_ratio and self._rng.random() < self.skip_delivered_ratio:
                read = out[r].copy()
                for key in ("conversation", "pricing"):
                    if key in out[d].item:
                        read.item[key] = out[d].item[key]
                out[r] = read
                dropped.add(d)
            elif self.out_of_order_ratio and self._rng.random() < self.out_of_order_ratio:
                out[d], out[r] = out[r], out[d]
        out = [u for i, u in enumerate(out) if i not in dropped]
        count = round(self.duplicate_ratio * len(out))
        for index in sorted(self._rng.sample(range(len(out)), count), reverse=True):
            position = self._rng.randint(index + 1, len(out))
            out.insert(position, out[index].copy())
        return out

    def _posts(self, updates: list[Update]) -> list[tuple[str, bytes, dict[str, str], list[Update]]]:
        chunks: dict[tuple[Any, ...], list[list[Update]]] = {}
        order: list[tuple[int, tuple[Any, ...], int]] = []
        for i, upd in enumerate(updates):
            n = upd.number
            key = (n.webhook_url, n.provider, n.app_secret, tuple(sorted(n.webhook_headers.items())))
            lists = chunks.setdefault(key, [])
            if not lists or len(lists[-1]) >= self.batch_size:
                lists.append([])
                order.append((i, key, len(lists) - 1))
            lists[-1].append(upd)
        posts = []
        for _, key, idx in sorted(order):
            chunk = chunks[key][idx]
            body = encode_body(build_envelope(chunk), escape_slashes=self.escape_slashes)
            headers = webhook_headers(chunk[0].number, body, sha1_header=self.sha1_header)
            posts.append((str(chunk[0].number.webhook_url), body, headers, chunk))
        return posts

    # -- posting ---------------------------------------------------------------------

    def _new_delivery(self, url: str, body: bytes, headers: dict[str, str],
                      updates: list[Update]) -> Delivery:
        with self._cond:
            self._ids += 1
            delivery = Delivery(self._ids, url, body, headers, updates)
            self.deliveries.append(delivery)
        return delivery

    def _deliver(self, url: str, body: bytes, headers: dict[str, str], updates: list[Update],
                 *, retry: bool = True) -> Delivery:
        delivery = self._new_delivery(url, body, headers, updates)
        self._run_attempts(delivery, retry)
        return delivery

    def _run_attempts(self, delivery: Delivery, retry: bool) -> None:
        delays = (None,) + (self.retry_delays if retry else ())
        for delay in delays:
            if delay:
                self.sleep(delay)
            answer = error = None
            started = time.perf_counter()
            try:
                status, answer = _answer_of(self.transport(delivery.url, delivery.body, delivery.headers))
            except Exception as exc:  # connection refused, timeout: Meta retries those too
                status, error = None, f"{type(exc).__name__}: {exc}"
            delivery.attempts.append(Attempt(delivery.id, len(delivery.attempts) + 1, status, error,
                                             self.clock(), answer[:2000] if answer else answer,
                                             time.perf_counter() - started))
            if status == 200:
                delivery.outcome = "delivered"
                return
        delivery.outcome = "dropped"

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send the very same bytes again as a new delivery (Meta re-sending an event)."""
        return self._deliver(delivery.url, delivery.body, dict(delivery.headers), delivery.updates)

    def post_payload(self, number: Number, payload: Any, *, app_secret: str | None = None,
                     headers: Mapping[str, str] | None = None, retry: bool = False) -> Delivery:
        """Post a hand-made body (dict, or raw bytes sent untouched) to the number's URL,
        signed with its app secret or `app_secret` (e.g. a wrong one); extra `headers` win."""
        if not number.webhook_url:
            raise RuntimeError(f"number {number.phone_number_id} has no webhook_url")
        body = payload if isinstance(payload, bytes) else encode_body(payload, escape_slashes=self.escape_slashes)
        all_headers = webhook_headers(number, body, app_secret=app_secret, sha1_header=self.sha1_header)
        all_headers.update(headers or {})
        return self._deliver(number.webhook_url, body, all_headers, [], retry=retry)

    def verify(self, number: Number, *, verify_token: str | None = None,
               challenge: str | None = None) -> Handshake:
        """Meta's GET handshake against the number's webhook URL (spec §1.1)."""
        if not number.webhook_url:
            raise RuntimeError(f"number {number.phone_number_id} has no webhook_url")
        challenge = challenge or str(self._rng.randint(10**9, 2 * 10**9))
        query = urlencode({"hub.mode": "subscribe", "hub.challenge": challenge,
                           "hub.verify_token": number.verify_token if verify_token is None else verify_token})
        url = number.webhook_url + ("&" if "?" in number.webhook_url else "?") + query
        getter = getattr(self.transport, "get", None) or RequestsTransport().get
        status, body = getter(url)
        return Handshake(url, status, body, challenge)

    # -- background ------------------------------------------------------------------

    def start(self) -> None:
        """Deliver in a background thread as soon as updates are queued."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wa-webhook-driver", daemon=True)
        self._thread.start()

    def stop(self, *, drain: bool = True) -> None:
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            self._stopping = True
            if not drain:
                self._pending.clear()
            self._cond.notify_all()
        thread.join()
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Background mode: wait until everything queued has been posted (True) or the
        timeout passes (False). Without a background thread: True iff nothing is queued."""
        with self._cond:
            if self._thread is None:
                return not self._pending and not self._busy
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if self._stopping and not self._pending:
                    return
            try:
                self.flush()
            except Exception as exc:  # keep the thread alive; the test reads driver.errors
                self.errors.append(exc)
                with self._cond:
                    if self._stopping:
                        return  # what could not be posted stays in `pending`
                    self._cond.wait(0.1)
