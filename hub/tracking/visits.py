"""Recording a visit of /l/<slug>: what it says about its source, and its code.

Everything a visitor sends is untrusted: each value is cut to a fixed length and loses
control characters (PostgreSQL refuses NUL in text), so an oversize or hostile query
string still gets its redirect. The IP address is kept only as a salted HMAC.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.tracking.attribution import CLICK_IDS, UTM_FIELDS
from hub.platform.config import Config
from hub.shared.config_errors import ConfigError
from hub.platform.db import Database
from hub.models import Channel, TrackedLink, Visit
from hub.shared.security import _dev_generated, hmac_sha256_hex
from hub.tracking.codes import mint_code
from hub.tracking.fast_visit import insert_visit

TAG_MAX = 255  # utm_* and click ids
URL_MAX = 2048  # referrer, landing page
AGENT_MAX = 512
MINT_ATTEMPTS = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_YM_UID = re.compile(r"^\d{1,32}$")
_ROISTAT_VISIT = re.compile(r"^\d{1,20}$")
_GA_PART = re.compile(r"^[0-9A-Za-z._-]{1,128}$")


def _clean(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    value = _CONTROL.sub("", value)[:limit].strip()
    return value or None


def ga_client_id(cookie: str | None) -> str | None:
    """Google Analytics' client id from a _ga cookie: "GA1.2.1234567890.1700000000" ->
    "1234567890.1700000000" (what GA and amoCRM's gclientid expect)."""
    value = _clean(cookie, 255)
    if not value or not _GA_PART.match(value):
        return None
    parts = value.split(".")
    if len(parts) >= 4 and parts[0].upper().startswith("GA"):
        return ".".join(parts[-2:])
    return value[:128]


def ym_uid(value: str | None) -> str | None:
    value = _clean(value, 64)
    return value if value and _YM_UID.match(value) else None


def roistat_visit(value: str | None) -> str | None:
    """Roistat's visit number from its roistat_visit cookie (digits), what its orders name."""
    value = _clean(value, 32)
    return value if value and _ROISTAT_VISIT.match(value) else None


def _query_of(url: str | None) -> dict[str, list[str]]:
    if not url:
        return {}
    try:
        return parse_qs(urlsplit(url).query)
    except ValueError:
        return {}


def visit_fields(args: Mapping[str, str], cookies: Mapping[str, str], *, referer: str | None,
                 user_agent: str | None, ip: str | None, salt: str) -> dict[str, Any]:
    """A visit's columns from the request, pure. Tags come from the query string, else
    from the landing page's URL (t.js passes it as `lp`), else the Referer's URL; the
    link's defaults fill the rest later, at attribution."""
    landing = _clean(args.get("lp"), URL_MAX)
    if "ref" in args or "lp" in args:  # t.js: the page's own referrer travels as `ref`
        referrer = _clean(args.get("ref"), URL_MAX)
    else:  # a plain link: the page the visitor clicked it on
        referrer = _clean(referer, URL_MAX)
    fallbacks = [_query_of(landing), _query_of(None if "lp" in args else referrer)]
    fields: dict[str, Any] = {}
    for name in UTM_FIELDS + CLICK_IDS:
        value = _clean(args.get(name), TAG_MAX)
        for query in fallbacks:
            if value:
                break
            value = _clean((query.get(name) or [None])[0], TAG_MAX)
        fields[name] = value
    fields.update(
        landing_page=landing,
        referrer=referrer,
        ga_client_id=ga_client_id(cookies.get("_ga") or args.get("_ga")),
        ym_uid=ym_uid(cookies.get("_ym_uid") or args.get("_ym_uid")),
        roistat_visit=roistat_visit(cookies.get("roistat_visit") or args.get("roistat_visit")),
        user_agent=_clean(user_agent, AGENT_MAX),
        ip_hash=hmac_sha256_hex(salt.encode(), ip.encode()) if ip else None,
    )
    return fields


# Link-preview fetchers and crawlers: a link pasted into a chat or a post is fetched by
# them at once, and counting those as visits would skew every conversion rate.
_PREVIEW_BOTS = re.compile(
    r"bot\b|bot/|crawler|spider|facebookexternalhit|facebookcatalog|WhatsApp/|TelegramBot|Slackbot|Discordbot|"
    r"vkShare|Twitterbot|LinkedInBot|SkypeUriPreview|Pinterest|redditbot|Embedly|Iframely|preview",
    re.IGNORECASE)


def is_preview_bot(user_agent: str | None) -> bool:
    return bool(user_agent) and bool(_PREVIEW_BOTS.search(user_agent[:AGENT_MAX]))


def number_digits(channel: Channel | str) -> str:
    number = channel.display_number if isinstance(channel, Channel) else channel
    return re.sub(r"\D", "", number or "")


def prefilled_text(template: str, code: str) -> str:
    return template.replace("{code}", code)


def wa_me_url(digits: str, text: str | None = None) -> str:
    url = f"https://wa.me/{digits}"
    return f"{url}?text={quote(text, safe='')}" if text else url


_BOT_USERNAME = re.compile(r"@([A-Za-z][A-Za-z0-9_]{2,31})")


def chat_url(number: str | None, text: str | None = None, code: str | None = None) -> str | None:
    """Where a visitor is sent to start the chat: wa.me/<digits>?text=<text> for a
    WhatsApp number; t.me/<bot>?start=<code> for a Telegram bot (display number
    "@name"), which opens the bot and sends "/start <code>" when they press Start (a
    deep link carries no text, only the code). None: nowhere to send them."""
    bot = _BOT_USERNAME.fullmatch(number or "")
    if bot:
        return f"https://t.me/{bot.group(1)}" + (f"?start={quote(code, safe='')}" if code else "")
    digits = number_digits(number)
    return wa_me_url(digits, text) if digits else None


@dataclass(frozen=True)
class Redirect:
    code: str
    url: str


class LinkNotFound(LookupError):
    """No active link with that slug (or its number has no digits to open)."""


class CodesExhausted(RuntimeError):
    """Every freshly minted code collided with a live one: never expected in practice."""


_LINK_BY_SLUG = (
    select(TrackedLink.id, TrackedLink.text_template, TrackedLink.static_code, Channel.display_number)
    .join(Channel, Channel.id == TrackedLink.channel_id)
    .where(TrackedLink.slug == bindparam("slug"), TrackedLink.active.is_(True))
)


def find_link(db: Database, slug: str) -> tuple[int, str, str | None, str] | None:
    """(link id, text template, static code, the chat's URL without a code) of an active link."""
    with db.engine.connect() as conn:
        row = conn.execute(_LINK_BY_SLUG, {"slug": slug}).first()
    url = chat_url(row[3]) if row is not None else None
    if url is None:
        return None
    return row[0], row[1], row[2], url


def record_visit(db: Database, slug: str, fields: Mapping[str, Any], *, now: datetime,
                 window: timedelta, mint: Any = mint_code) -> Redirect:
    """Store a visit with a code unique among live visits; answer where to send it.

    The unique key on live_code decides collisions: on one, the code's holder is freed
    if it has expired, and a new code is drawn. The link is read in the transaction
    that writes the visit, so an edit or a disabled link counts from the next click."""
    store = _store_postgres if db.dialect == "postgresql" else _store_core
    for _ in range(MINT_ATTEMPTS):
        code = mint()
        try:
            found = store(db, slug, code, fields, now)
        except IntegrityError:
            retire_expired(db, code, cutoff=now - window)
            continue
        url = chat_url(found[1], prefilled_text(found[0], found[2]), found[2]) \
            if found is not None and found[2] is not None else None
        if url is None:
            raise LinkNotFound(slug)
        return Redirect(found[2], url)
    raise CodesExhausted(f"no free code after {MINT_ATTEMPTS} attempts")


def _store_postgres(db: Database, slug: str, code: str, fields: Mapping[str, Any],
                    now: datetime) -> tuple[str, str, str | None] | None:
    try:
        return insert_visit(db, slug, code, fields, now)
    except psycopg.IntegrityError as exc:  # the same exception as the Core path's
        raise IntegrityError("INSERT INTO tracking_visits", {}, exc) from exc


def _store_core(db: Database, slug: str, code: str, fields: Mapping[str, Any],
                now: datetime) -> tuple[str, str, str | None] | None:
    """SQLite (one writer, in-process): the lookup and the INSERT in one transaction."""
    with db.engine.begin() as conn:
        row = conn.execute(_LINK_BY_SLUG, {"slug": slug}).first()
        if row is None or chat_url(row[3]) is None:
            return None
        link_id, template, static_code, number = row
        stored = static_code or code
        conn.execute(insert(Visit), [{**fields, "link_id": link_id, "code": stored,
                                      "live_code": None if static_code else code, "visited_at": now}])
    return template, number, stored


def retire_expired(db: Database, code: str, *, cutoff: datetime) -> int:
    """Free `code` if the visit holding it is past the attribution window."""
    with db.scope() as session:
        return session.execute(
            update(Visit).where(Visit.live_code == code, Visit.visited_at < cutoff).values(live_code=None)
            .execution_options(synchronize_session=False)
        ).rowcount


def load_ip_salt(config: Config) -> str:
    """[tracking] ip_salt; generated into data_dir in development."""
    if config.tracking.ip_salt:
        return config.tracking.ip_salt
    if config.mode == "production":
        raise ConfigError("tracking.ip_salt: missing; production mode needs a secret salt for visitors' "
                          "IP hashes (set HUB_TRACKING__IP_SALT to a long random string)")
    for _ in range(50):
        try:
            salt = _dev_generated(config, "tracking_ip.salt", lambda: secrets.token_urlsafe(32))
        except FileExistsError:  # another process is creating it right now
            salt = ""
        if salt:
            return salt
        time.sleep(0.02)
    raise ConfigError(f"tracking.ip_salt: {config.data_dir}/tracking_ip.salt stays empty; delete it")
