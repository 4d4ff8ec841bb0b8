"""The WhatsApp rate card: what one message or conversation costs, per market and category.

Meta publishes rates per market (a country or a region such as "North America") and
currency, changes them quarterly, and BSPs add their own margins, so the card is data the
operator supplies: a TOML file named by `[whatsapp] rate_card` in the hub config. Empty
means the bundled `rate_card_example.toml`, whose figures are examples to be replaced.

File shape (every key checked; a mistake raises ConfigError naming the key):

    currency = "USD"                 # ISO 4217 code, one per card
    default_market = "Other"         # for countries not listed under [countries]
    free_service_allowance = 0       # free service messages per number per month from
                                     # 1 Oct 2026 (unverified, so 0 unless you know better)
    note = "..."                     # optional free text

    [countries]                      # ISO region (as phonenumbers names it) -> market
    US = "North America"

    [markets."North America"]        # rates: a decimal string/number, or volume tiers as
    marketing = "0.0250"             # [[from_count, rate], ...] where from_count is how
    utility = [[0, "0.0040"], [100000, "0.0036"]]   # many billable messages of the month
    authentication = "0.0040"        # came before (the first tier starts at 0)
    authentication_international = "0.0280"   # optional; falls back to authentication
    service = "0.0040"               # optional; Meta prices it at the utility list rate
    business_initiated = "0.0500"    # optional: CBP v1 (Feb 2022 - May 2023) re-rating
    user_initiated = "0.0300"        # optional: CBP v1
    notification = "0.0400"          # optional: notification-based pricing (before 2022)

Volume tiers are only allowed where Meta has them: utility, authentication,
authentication_international (and the old per-notification tiers).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import phonenumbers

from hub.shared.config_errors import ConfigError
from hub.platform.config import register_setting_check

log = logging.getLogger(__name__)

EXAMPLE_CARD = Path(__file__).with_name("rate_card_example.toml")

REQUIRED = ("marketing", "utility", "authentication")
OPTIONAL = ("authentication_international", "service", "business_initiated", "user_initiated", "notification")
CATEGORIES = REQUIRED + OPTIONAL
TIERED = frozenset({"utility", "authentication", "authentication_international", "notification"})
TOP_LEVEL = frozenset({"currency", "default_market", "free_service_allowance", "note", "countries", "markets"})


class MissingRate(LookupError):
    """The card has no rate for a category a message needs (e.g. legacy CBP v1 rates)."""


@dataclass(frozen=True)
class Tier:
    from_count: int  # billable messages of the month already sent before this tier applies
    rate: Decimal


@dataclass(frozen=True)
class Market:
    name: str
    rates: Mapping[str, tuple[Tier, ...]]  # category -> tiers (a flat rate is one tier at 0)

    def rate(self, category: str, month_to_date: int = 0) -> Decimal:
        """The rate of the `month_to_date + 1`-th billable message of this category."""
        tiers = self.rates.get(category)
        if tiers is None and category == "authentication_international":
            tiers = self.rates.get("authentication")
        if tiers is None and category == "service":
            tiers = self.rates.get("utility", ())[:1]  # the list rate: no tiers for service
        if not tiers:
            raise MissingRate(f"rate card market {self.name!r} has no {category} rate")
        chosen = tiers[0]
        for tier in tiers:
            if tier.from_count <= month_to_date:
                chosen = tier
        return chosen.rate


@dataclass(frozen=True)
class RateCard:
    currency: str
    default_market: str
    markets: Mapping[str, Market]
    countries: Mapping[str, str]  # ISO region -> market name
    free_service_allowance: int = 0
    note: str = ""
    source: str = ""
    example: bool = field(default=False, compare=False)

    def market_for(self, recipient: str) -> Market:
        """The market of a recipient given as E.164 (+447...), a wa_id (447...) or a
        country calling code (44, +44). Unknown or unlisted countries: the default."""
        region = region_of(recipient)
        name = self.countries.get(region or "", self.default_market)
        return self.markets[name]


def region_of(recipient: str) -> str | None:
    """ISO region of a phone number or calling code; None when it cannot be told.

    A full number resolves NANP and shared codes to the right country (+1 876 is
    Jamaica); a bare calling code resolves to its main country (1 -> US, 7 -> RU)."""
    digits = recipient.strip().lstrip("+").replace(" ", "").replace("-", "")
    if not digits.isdigit():
        return None
    if len(digits) <= 3:
        region = phonenumbers.region_code_for_country_code(int(digits))
        return None if region == phonenumbers.UNKNOWN_REGION else region
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region is None:  # a well-formed but unassigned number: fall back to its code
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return None if region in (None, phonenumbers.UNKNOWN_REGION) else region


def _fail(where: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"rate card {where}: {key}: {problem}")


def _money(value: Any, where: str, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail(where, key, "must be a decimal number such as \"0.0250\"")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(where, key, "must be a finite number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _fail(where, key, f"{value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise _fail(where, key, "must be a finite number")
    if amount < 0:
        raise _fail(where, key, "must not be negative")
    return amount


def _tiers(value: Any, where: str, key: str, category: str) -> tuple[Tier, ...]:
    if not isinstance(value, list):
        return (Tier(0, _money(value, where, key)),)
    if category not in TIERED:
        raise _fail(where, key, "volume tiers are only allowed for " + ", ".join(sorted(TIERED)))
    if not value:
        raise _fail(where, key, "needs at least one [from_count, rate] tier")
    tiers: list[Tier] = []
    for i, item in enumerate(value):
        item_key = f"{key}[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            raise _fail(where, item_key, "must be a [from_count, rate] pair")
        start, rate = item
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise _fail(where, item_key, "from_count must be a whole number >= 0")
        if i == 0 and start != 0:
            raise _fail(where, item_key, "the first tier must start at 0")
        if tiers and start <= tiers[-1].from_count:
            raise _fail(where, item_key, "tiers must be in increasing from_count order")
        tiers.append(Tier(start, _money(rate, where, item_key)))
    return tuple(tiers)


def parse_rate_card(raw: Mapping[str, Any], where: str = "<data>") -> RateCard:
    """Validate a decoded card; `where` names it in errors."""
    for key in raw:
        if key not in TOP_LEVEL:
            raise _fail(where, key, "unknown key (expected one of " + ", ".join(sorted(TOP_LEVEL)) + ")")
    currency = raw.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise _fail(where, "currency", "must be a three-letter ISO 4217 code such as \"USD\"")
    allowance = raw.get("free_service_allowance", 0)
    if isinstance(allowance, bool) or not isinstance(allowance, int) or allowance < 0:
        raise _fail(where, "free_service_allowance", "must be a whole number >= 0")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise _fail(where, "note", "must be a string")

    raw_markets = raw.get("markets")
    if not isinstance(raw_markets, dict) or not raw_markets:
        raise _fail(where, "markets", "must be a table with at least one market")
    markets: dict[str, Market] = {}
    for name, rates in raw_markets.items():
        base = f"markets.{name}"
        if not isinstance(rates, dict):
            raise _fail(where, base, "must be a table of category rates")
        for category in rates:
            if category not in CATEGORIES:
                raise _fail(where, f"{base}.{category}",
                            "unknown category (expected one of " + ", ".join(CATEGORIES) + ")")
        for category in REQUIRED:
            if category not in rates:
                raise _fail(where, f"{base}.{category}", "missing")
        parsed = {c: _tiers(v, where, f"{base}.{c}", c) for c, v in rates.items()}
        markets[name] = Market(name, MappingProxyType(parsed))

    default = raw.get("default_market", "Other")
    if not isinstance(default, str) or default not in markets:
        raise _fail(where, "default_market", f"{default!r} is not a market under [markets]")

    raw_countries = raw.get("countries", {})
    if not isinstance(raw_countries, dict):
        raise _fail(where, "countries", "must be a table of ISO region = market name")
    countries: dict[str, str] = {}
    for region, market in raw_countries.items():
        key = f"countries.{region}"
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise _fail(where, key, "not an ISO region code known to phonenumbers (e.g. GB, US)")
        if not isinstance(market, str) or market not in markets:
            raise _fail(where, key, f"{market!r} is not a market under [markets]")
        countries[region] = market

    return RateCard(
        currency=currency,
        default_market=default,
        markets=MappingProxyType(markets),
        countries=MappingProxyType(countries),
        free_service_allowance=allowance,
        note=note,
        source=where,
    )


_cache: dict[tuple[str, int, int], RateCard] = {}


def load_rate_card(path: str | os.PathLike[str] | None = None) -> RateCard:
    """Load and validate a card file; empty/None means the bundled example card.
    Parsed cards are reused until the file changes."""
    example = not path
    file = EXAMPLE_CARD if example else Path(path)  # type: ignore[arg-type]
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise ConfigError(f"rate card {file} does not exist") from None
    key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rate card {file} is not valid TOML: {exc}") from None
    card = parse_rate_card(raw, str(file))
    if example:
        card = dataclasses.replace(card, example=True)
    _cache[key] = card
    return card


def rate_card_for(config: Any) -> RateCard:
    """The card the hub's config names (warns once per process about the example card)."""
    card = load_rate_card(config.whatsapp.rate_card)
    if card.example and not _warned:
        _warned.append(True)
        log.warning("WhatsApp costs use the bundled EXAMPLE rate card; set [whatsapp] rate_card "
                    "to your own card for real figures")
    return card


_warned: list[bool] = []

# The card a setting names is parsed when the settings load, so a bad card stops the
# hub at start-up with the key named, not at the first message priced.
register_setting_check("whatsapp.rate_card", load_rate_card)
