"""What a WhatsApp message costs: billable or not, its category, and the amount.

Meta changed the pricing model several times (protocol sheet §9), and messages are
re-rated long after they were sent, so the rules in force are looked up by the send time
in PERIODS (data, not scattered date checks):

- notification-based (NBP) until 2022-02-01: each delivered template is charged;
- conversation-based (CBP): v1 from 2022-02-01 (business- vs user-initiated, one
  conversation at a time), v2 from 2023-06-01 (a conversation per category, several at
  once), authentication-international from 2024-06-01, free service from 2024-11-01;
- per-message (PMP) from 2025-07-01: each delivered template by category; non-template
  messages and utility templates inside the customer service window are free;
- from 2026-10-01 service messages and in-window utility templates are billed too.
Everything inside a free entry point window (§10.2) is free from 2022 on.

`quote()` forecasts a message about to be sent (assuming delivery); `charge()` rates one
already sent. When a status webhook carried a `pricing` object it is the truth for
billable, category and type (§4.2); the amount always comes from the rate card, which is
the operator's data (rate_card.py). Only delivered messages are billed.

Under CBP the price belongs to the conversation: the message that opens it carries the
amount (and `opens_conversation`), later messages in it cost 0 while staying `billable`,
as Meta's webhooks reported them.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping, NamedTuple

from hub.channels.whatsapp.billing.rate_card import TIERED, Market, RateCard, load_rate_card

NBP, CBP, PMP = "NBP", "CBP", "PMP"
REGULAR = "regular"
FREE_CUSTOMER_SERVICE = "free_customer_service"
FREE_ENTRY_POINT = "free_entry_point"
TEMPLATE_CATEGORIES = frozenset({"MARKETING", "UTILITY", "AUTHENTICATION"})
REFERRAL = "referral_conversion"
CONVERSATION = timedelta(hours=24)
FEP_CONVERSATION = timedelta(hours=72)
ZERO = Decimal("0")


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Period:
    """The billing rules in force from `starts` (UTC) until the next period."""

    name: str
    starts: datetime
    model: str  # NBP | CBP | PMP
    entry_point_free: bool = True  # the FEP exists (from CBP on)
    by_category: bool = False  # CBP v2+: one conversation per category, several at once
    service_free: bool = True  # non-template (service) messages/conversations cost nothing
    utility_free_in_window: bool = False  # PMP until Oct 2026
    auth_international: bool = False  # authentication-international rates exist
    free_tier: int = 0  # CBP: free conversations per month (per WABA)...
    free_tier_categories: frozenset[str] = frozenset()  # ...of these categories
    service_allowance: bool = False  # the card's free_service_allowance applies


PERIODS: tuple[Period, ...] = (
    Period("notification", datetime.min.replace(tzinfo=timezone.utc), NBP, entry_point_free=False),
    Period("cbp_v1", _utc(2022, 2, 1), CBP, service_free=False, free_tier=1000,
           free_tier_categories=frozenset({"business_initiated", "user_initiated"})),
    Period("cbp_v2", _utc(2023, 6, 1), CBP, by_category=True, service_free=False, free_tier=1000,
           free_tier_categories=frozenset({"service"})),
    Period("cbp_v2_auth_international", _utc(2024, 6, 1), CBP, by_category=True, service_free=False,
           auth_international=True, free_tier=1000, free_tier_categories=frozenset({"service"})),
    Period("cbp_v3", _utc(2024, 11, 1), CBP, by_category=True, auth_international=True),
    Period("pmp", _utc(2025, 7, 1), PMP, utility_free_in_window=True, auth_international=True),
    Period("pmp_service_billed", _utc(2026, 10, 1), PMP, service_free=False, auth_international=True,
           service_allowance=True),
)
_STARTS = [p.starts for p in PERIODS]


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime; pass a timezone-aware (UTC) one")
    return value


def period_at(at: datetime) -> Period:
    """The pricing period in force at `at`."""
    return PERIODS[bisect.bisect_right(_STARTS, _aware(at, "at")) - 1]


def _period_of_model(model: str, at: datetime) -> Period:
    """The period whose rules a webhook's pricing_model implies near `at`: Meta switches
    by WABA time zone and kept CBP conversations opened before 1 Jul 2025 running."""
    current = period_at(at)
    if current.model == model:
        return current
    before = [p for p in PERIODS if p.model == model and p.starts <= at]
    return before[-1] if before else next(p for p in PERIODS if p.model == model)


def normalise_category(value: str | None) -> str | None:
    """Meta's category spellings to one: lower case, underscores
    ("authentication-international" -> "authentication_international")."""
    if value is None:
        return None
    text = str(value).strip().lower().replace("-", "_")
    return text or None


class OpenConversation(NamedTuple):
    category: str
    expires_at: datetime


@dataclass(frozen=True)
class MessageFacts:
    """What pricing needs to know about one outgoing message.

    tier_count: billable messages of the same market and category already sent this
      month by the business portfolio (volume tiers for utility/authentication).
    free_used: conversations (CBP) or service messages (PMP from Oct 2026) already
      counted this month against the free tier / the card's free service allowance.
    open_conversations: CBP only: conversations open with this user, (category, expiry).
    auth_international: the business is eligible for authentication-international rates
      and its primary location is not the recipient's country.
    """

    is_template: bool
    category: str | None = None  # template category: MARKETING | UTILITY | AUTHENTICATION
    recipient: str = ""  # E.164 number, wa_id or country calling code ("" = default market)
    csw_open: bool = False  # customer service window open when sent
    fep_open: bool = False  # free entry point open when sent (window.entry_point_free)
    delivered: bool = False  # only delivered messages are billed (charge(); quote assumes it)
    open_conversations: tuple[OpenConversation, ...] = ()
    tier_count: int = 0
    free_used: int = 0
    auth_international: bool = False

    def __post_init__(self) -> None:
        category = self.category.strip().upper() if isinstance(self.category, str) else self.category
        if self.is_template:
            if category not in TEMPLATE_CATEGORIES:
                raise ValueError(f"template category must be one of {sorted(TEMPLATE_CATEGORIES)}, "
                                 f"not {self.category!r}")
        elif category is not None:
            raise ValueError("a non-template message has no template category")
        object.__setattr__(self, "category", category)
        for name in ("tier_count", "free_used"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0")
        conversations = []
        for item in self.open_conversations:
            kind, expires = item
            conversations.append(OpenConversation(normalise_category(kind) or "", _aware(expires, "expires_at")))
        object.__setattr__(self, "open_conversations", tuple(conversations))


@dataclass(frozen=True)
class Charge:
    billable: bool  # Meta bills the message (PMP) or the conversation it is in (CBP)
    category: str  # marketing, utility, authentication, authentication_international,
    #                service, referral_conversion, marketing_lite; CBP v1: business_initiated,
    #                user_initiated; NBP: notification
    pricing_type: str  # regular | free_customer_service | free_entry_point
    pricing_model: str  # NBP | CBP | PMP
    amount: Decimal  # what this message adds to the bill, in `currency`
    currency: str
    market: str
    period: str  # PERIODS name
    reason: str  # one line for people: why this amount
    opens_conversation: OpenConversation | None = None  # CBP: the conversation it opens

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (amount as a string, so no float rounding)."""
        opens = self.opens_conversation
        return {
            "billable": self.billable,
            "category": self.category,
            "pricing_type": self.pricing_type,
            "pricing_model": self.pricing_model,
            "amount": str(self.amount),
            "currency": self.currency,
            "market": self.market,
            "period": self.period,
            "reason": self.reason,
            "opens_conversation": None if opens is None else
            {"category": opens.category, "expires_at": opens.expires_at.isoformat()},
        }


@dataclass(frozen=True)
class _Verdict:
    category: str
    pricing_type: str
    billable: bool
    reason: str
    carries_price: bool = False  # this message pays (PMP: billable; CBP: opens a paid conversation)
    opens: OpenConversation | None = None


@dataclass(frozen=True)
class _Webhook:
    billable: bool | None
    model: str | None
    type: str | None
    category: str | None


def _read_webhook(pricing: Any) -> _Webhook:
    """Accept the raw JSON dict or types.Pricing."""
    get = pricing.get if isinstance(pricing, Mapping) else lambda k: getattr(pricing, k, None)
    billable = get("billable")
    model = get("pricing_model")
    kind = get("type")
    return _Webhook(
        billable=billable if isinstance(billable, bool) else None,
        model=str(model).strip().upper() if model else None,
        type=str(kind).strip().lower() if kind else None,
        category=normalise_category(get("category")),
    )


# --- the rules of each model, without the webhook ---------------------------------------

def _template_category(facts: MessageFacts, period: Period, market: Market) -> str:
    category = (facts.category or "").lower()
    if (category == "authentication" and facts.auth_international and period.auth_international
            and "authentication_international" in market.rates):
        return "authentication_international"
    return category


def _entry_point(facts: MessageFacts, at: datetime, period: Period) -> _Verdict:
    opens = None
    if period.model == CBP and not any(c.category == REFERRAL for c in _open(facts, at)):
        opens = OpenConversation(REFERRAL, at + FEP_CONVERSATION)
    return _Verdict(REFERRAL, FREE_ENTRY_POINT, False, "inside the free entry point window", opens=opens)


def _open(facts: MessageFacts, at: datetime) -> list[OpenConversation]:
    return sorted((c for c in facts.open_conversations if c.expires_at > at),
                  key=lambda c: c.expires_at, reverse=True)


def _same_conversation(a: str, b: str) -> bool:
    """authentication_international is an authentication conversation, marketing_lite a
    marketing one, for the one-conversation-per-category rule."""
    base = {"authentication_international": "authentication", "marketing_lite": "marketing"}
    return base.get(a, a) == base.get(b, b)


def _nbp(facts: MessageFacts, at: datetime, period: Period, market: Market) -> _Verdict:
    if facts.is_template:
        return _Verdict("notification", REGULAR, True, "template notification", carries_price=True)
    return _Verdict("service", FREE_CUSTOMER_SERVICE, False, "session message: not charged before 2022")


def _cbp_free(category: str, period: Period) -> bool:
    return category == REFERRAL or (category == "service" and period.service_free)


def _cbp_inside(conversation: OpenConversation, period: Period) -> _Verdict:
    free = _cbp_free(conversation.category, period)
    ptype = FREE_ENTRY_POINT if conversation.category == REFERRAL else (
        FREE_CUSTOMER_SERVICE if free else REGULAR)
    return _Verdict(conversation.category, ptype, not free,
                    f"inside the open {conversation.category} conversation (charged when it opened)")


def _cbp_open(category: str, at: datetime, period: Period) -> _Verdict:
    free = _cbp_free(category, period)
    return _Verdict(category, FREE_CUSTOMER_SERVICE if free else REGULAR, not free,
                    f"opens a {category} conversation" + (" (service is free)" if free else ""),
                    carries_price=not free, opens=OpenConversation(category, at + CONVERSATION))


def _cbp(facts: MessageFacts, at: datetime, period: Period, market: Market) -> _Verdict:
    if facts.fep_open:
        return _entry_point(facts, at, period)
    open_now = _open(facts, at)
    if not period.by_category:  # v1: one conversation at a time
        if open_now:
            return _cbp_inside(open_now[0], period)
        initiated = "user_initiated" if facts.csw_open or not facts.is_template else "business_initiated"
        return _cbp_open(initiated, at, period)
    if facts.is_template:
        category = _template_category(facts, period, market)
        same = [c for c in open_now if _same_conversation(c.category, category)]
        return _cbp_inside(same[0], period) if same else _cbp_open(category, at, period)
    if open_now:  # a non-template message opens service only when nothing is open
        return _cbp_inside(open_now[0], period)
    return _cbp_open("service", at, period)


def _pmp(facts: MessageFacts, at: datetime, period: Period, market: Market) -> _Verdict:
    if facts.fep_open:
        return _entry_point(facts, at, period)
    if not facts.is_template:
        if period.service_free:
            return _Verdict("service", FREE_CUSTOMER_SERVICE, False, "non-template messages are free")
        return _Verdict("service", REGULAR, True, "service message (billed from 1 Oct 2026)",
                        carries_price=True)
    category = _template_category(facts, period, market)
    if category == "utility" and facts.csw_open and period.utility_free_in_window:
        return _Verdict("utility", FREE_CUSTOMER_SERVICE, False,
                        "utility template inside the customer service window")
    return _Verdict(category, REGULAR, True, f"{category} template", carries_price=True)


_RULES = {NBP: _nbp, CBP: _cbp, PMP: _pmp}


# --- the webhook as truth -----------------------------------------------------------------

def _from_webhook(hook: _Webhook, facts: MessageFacts, at: datetime, period: Period,
                  market: Market) -> _Verdict:
    ruled = _RULES[period.model](facts, at, period, market)
    category = hook.category or ruled.category
    ptype = hook.type
    if category == REFERRAL:  # only ever the free entry point, whatever else is claimed
        ptype = FREE_ENTRY_POINT
    elif ptype is None:  # CBP webhooks carried no type
        if hook.billable is not None:
            ptype = REGULAR if hook.billable else FREE_CUSTOMER_SERVICE
        else:
            ptype = ruled.pricing_type
    if ptype == REGULAR:
        billable = True
    elif ptype.startswith("free"):
        billable = False
    else:  # a type this code does not know yet: trust the deprecated flag while it lasts
        billable = hook.billable if hook.billable is not None else True
    reason = f"from the status webhook: {ptype} {category}"
    if period.model != CBP:
        return _Verdict(category, ptype, billable, reason, carries_price=billable)
    open_now = _open(facts, at)
    same = open_now if not period.by_category else [
        c for c in open_now if _same_conversation(c.category, category)]
    if same:
        return _Verdict(category, ptype, billable,
                        reason + f", inside the open {same[0].category} conversation")
    length = FEP_CONVERSATION if category == REFERRAL else CONVERSATION
    return _Verdict(category, ptype, billable, reason + ", opens the conversation",
                    carries_price=billable, opens=OpenConversation(category, at + length))


# --- public ------------------------------------------------------------------------------

def _price(facts: MessageFacts, at: datetime, hook: _Webhook | None, card: RateCard | None) -> Charge:
    at = _aware(at, "at")
    card = card or load_rate_card(None)
    period = period_at(at)
    if hook is not None and hook.model in _RULES:
        period = _period_of_model(hook.model, at)
    market = card.market_for(facts.recipient)
    verdict = (_from_webhook(hook, facts, at, period, market) if hook is not None
               else _RULES[period.model](facts, at, period, market))

    def result(amount: Decimal, reason: str, billable: bool = verdict.billable,
               opens: OpenConversation | None = verdict.opens) -> Charge:
        return Charge(billable=billable, category=verdict.category, pricing_type=verdict.pricing_type,
                      pricing_model=period.model, amount=amount, currency=card.currency,
                      market=market.name, period=period.name, reason=reason, opens_conversation=opens)

    if not facts.delivered:
        return result(ZERO, verdict.reason + "; not delivered, so not billed", billable=False, opens=None)
    if not verdict.carries_price:
        return result(ZERO, verdict.reason)
    category = verdict.category
    if category in period.free_tier_categories and facts.free_used < period.free_tier:
        return result(ZERO, verdict.reason + f"; within the {period.free_tier} free conversations a month")
    if period.service_allowance and category == "service" and facts.free_used < card.free_service_allowance:
        return result(ZERO, verdict.reason + f"; within the free allowance of "
                            f"{card.free_service_allowance} service messages a month")
    rate_category = "marketing" if category == "marketing_lite" else category
    count = facts.tier_count if rate_category in TIERED else 0
    return result(market.rate(rate_category, count), verdict.reason)


def quote(facts: MessageFacts, at: datetime, *, card: RateCard | None = None) -> Charge:
    """The expected charge of a message about to be sent at `at`, assuming it is
    delivered. `card` defaults to the bundled example card: pass rate_card_for(config)."""
    return _price(replace(facts, delivered=True), at, None, card)


def charge(facts: MessageFacts, at: datetime, webhook_pricing: Any = None, *,
           card: RateCard | None = None) -> Charge:
    """The charge of a message sent at `at`. `webhook_pricing` is the status webhook's
    `pricing` object (dict or types.Pricing), the truth for billable/category/type."""
    hook = _read_webhook(webhook_pricing) if webhook_pricing is not None else None
    return _price(facts, at, hook, card)


def open_conversations_after(charges: Iterable[Charge], at: datetime) -> tuple[OpenConversation, ...]:
    """CBP bookkeeping: the conversations still open at `at` that `charges` opened, to
    feed the next message's MessageFacts.open_conversations."""
    return tuple(c.opens_conversation for c in charges
                 if c.opens_conversation is not None and c.opens_conversation.expires_at > at)
