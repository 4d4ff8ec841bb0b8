import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.whatsapp.billing import pricing
from hub.channels.whatsapp.billing.pricing import (
    PERIODS,
    Charge,
    MessageFacts,
    OpenConversation,
    charge,
    period_at,
    quote,
)
from hub.channels.whatsapp.billing.rate_card import (
    EXAMPLE_CARD,
    MissingRate,
    load_rate_card,
    parse_rate_card,
    rate_card_for,
    region_of,
)
from hub.channels.whatsapp.inbound.types import Pricing
from hub.platform.config import load_config
from hub.shared.config_errors import ConfigError

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)

CARD_DATA = {
    "currency": "EUR",
    "default_market": "Other",
    "countries": {"US": "North America", "CA": "North America", "IN": "India", "JM": "Caribbean"},
    "markets": {
        "North America": {
            "marketing": "0.0250",
            "utility": [[0, "0.0040"], [100000, "0.0030"]],
            "authentication": [[0, "0.0135"], [10, "0.0100"]],
            "service": "0.0045",
            "business_initiated": "0.0500",
            "user_initiated": "0.0300",
            "notification": [[0, "0.0200"], [5, "0.0150"]],
        },
        "India": {
            "marketing": "0.0107",
            "utility": "0.0014",
            "authentication": "0.0014",
            "authentication_international": "0.0280",
            "service": "0.0020",
            "business_initiated": "0.0091",
            "user_initiated": "0.0042",
            "notification": "0.0040",
        },
        "Caribbean": {"marketing": "0.0740", "utility": "0.0113", "authentication": "0.0113"},
        # No service rate (Meta prices service at the utility list rate), no legacy rates.
        "Other": {"marketing": 0.06, "utility": [[0, "0.0080"], [1000, "0.0070"]], "authentication": "0.0077"},
    },
}
CARD = parse_rate_card(CARD_DATA)

US = "+15551234567"
INDIA = "+919876543210"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def template(category: str, **kw) -> MessageFacts:
    return MessageFacts(is_template=True, category=category, recipient=kw.pop("recipient", US),
                        delivered=kw.pop("delivered", True), **kw)


def text(**kw) -> MessageFacts:
    return MessageFacts(is_template=False, recipient=kw.pop("recipient", US),
                        delivered=kw.pop("delivered", True), **kw)


def priced(facts: MessageFacts, when: datetime, hook=None) -> Charge:
    return charge(facts, when, hook, card=CARD)


# --- periods --------------------------------------------------------------------------------

def test_periods_are_ordered_data():
    starts = [p.starts for p in PERIODS]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(p.model in ("NBP", "CBP", "PMP") for p in PERIODS)


@pytest.mark.parametrize(
    "boundary, before, after",
    [
        ("2022-02-01", "notification", "cbp_v1"),
        ("2023-06-01", "cbp_v1", "cbp_v2"),
        ("2024-06-01", "cbp_v2", "cbp_v2_auth_international"),
        ("2024-11-01", "cbp_v2_auth_international", "cbp_v3"),
        ("2025-07-01", "cbp_v3", "pmp"),
        ("2026-10-01", "pmp", "pmp_service_billed"),
    ],
)
def test_period_boundaries_are_utc_midnight(boundary, before, after):
    edge = at(boundary + "T00:00:00")
    assert period_at(edge - SECOND).name == before
    assert period_at(edge).name == after
    assert period_at(edge + SECOND).name == after


def test_period_needs_an_aware_time():
    with pytest.raises(ValueError, match="naive"):
        period_at(datetime(2025, 7, 1))
    with pytest.raises(ValueError, match="naive"):
        quote(template("MARKETING"), datetime(2025, 7, 1), card=CARD)


# --- 2022-02-01: notifications -> conversations ---------------------------------------------

def test_notification_based_pricing_charges_each_delivered_template():
    when = at("2022-01-31T23:59:59")
    c = priced(template("UTILITY", csw_open=True, tier_count=5), when)
    assert (c.pricing_model, c.category, c.billable, c.amount) == ("NBP", "notification", True, Decimal("0.0150"))
    assert c.opens_conversation is None
    free = priced(text(csw_open=True), when)
    assert (free.billable, free.amount, free.pricing_type) == (False, 0, "free_customer_service")
    # There was no free entry point before conversation-based pricing.
    assert priced(template("MARKETING", fep_open=True), when).amount == Decimal("0.0200")


def test_cbp_v1_business_and_user_initiated_conversations():
    when = at("2022-02-01T00:00:00")
    used = {"free_used": 1000}  # past the month's free conversations
    outside = priced(template("MARKETING", **used), when)
    assert (outside.pricing_model, outside.category, outside.amount) == ("CBP", "business_initiated", Decimal("0.0500"))
    assert outside.opens_conversation == OpenConversation("business_initiated", when + timedelta(hours=24))
    inside = priced(template("MARKETING", csw_open=True, **used), when)
    assert (inside.category, inside.amount) == ("user_initiated", Decimal("0.0300"))
    reply = priced(text(csw_open=True, **used), when)
    assert (reply.category, reply.amount) == ("user_initiated", Decimal("0.0300"))
    # One conversation at a time: while one is open, every message rides on it.
    open_bi = (OpenConversation("business_initiated", when + HOUR),)
    rider = priced(template("UTILITY", open_conversations=open_bi, **used), when)
    assert (rider.category, rider.billable, rider.amount, rider.opens_conversation) == (
        "business_initiated", True, 0, None)


def test_cbp_v1_free_entry_point_opens_a_72_hour_free_conversation():
    when = at("2022-02-01T00:00:01")
    c = priced(template("MARKETING", fep_open=True), when)
    assert (c.category, c.pricing_type, c.billable, c.amount) == ("referral_conversion", "free_entry_point", False, 0)
    assert c.opens_conversation == OpenConversation("referral_conversion", when + timedelta(hours=72))


def test_cbp_v1_first_1000_conversations_a_month_are_free():
    when = at("2022-06-01T00:00:00")
    assert priced(template("MARKETING", free_used=999), when).amount == 0
    assert priced(template("MARKETING", free_used=999), when).billable is True
    assert priced(template("MARKETING", free_used=1000), when).amount == Decimal("0.0500")


# --- 2023-06-01: v1 -> per-category conversations ------------------------------------------

def test_2023_06_01_templates_open_conversations_of_their_category():
    before, after = at("2023-05-31T23:59:59"), at("2023-06-01T00:00:00")
    facts = template("MARKETING", free_used=5000)
    assert priced(facts, before).category == "business_initiated"
    c = priced(facts, after)
    assert (c.category, c.amount) == ("marketing", Decimal("0.0250"))
    assert c.opens_conversation == OpenConversation("marketing", after + timedelta(hours=24))


def test_cbp_v2_several_categories_open_in_parallel():
    when = at("2023-09-01T10:00:00")
    utility_open = (OpenConversation("utility", when + HOUR),)
    marketing = priced(template("MARKETING", open_conversations=utility_open, free_used=5000), when)
    assert (marketing.category, marketing.amount) == ("marketing", Decimal("0.0250"))
    assert marketing.opens_conversation is not None
    utility = priced(template("UTILITY", open_conversations=utility_open), when)
    assert (utility.billable, utility.amount, utility.opens_conversation) == (True, 0, None)
    # An expired conversation does not count.
    expired = (OpenConversation("utility", when),)
    assert priced(template("UTILITY", open_conversations=expired), when).amount == Decimal("0.0040")


def test_cbp_v2_non_template_opens_service_only_when_nothing_is_open():
    when = at("2023-09-01T10:00:00")
    marketing_open = (OpenConversation("marketing", when + HOUR),)
    rider = priced(text(csw_open=True, open_conversations=marketing_open), when)
    assert (rider.category, rider.amount, rider.opens_conversation) == ("marketing", 0, None)
    alone = priced(text(csw_open=True, free_used=1000), when)
    assert (alone.category, alone.amount, alone.billable) == ("service", Decimal("0.0045"), True)
    assert alone.opens_conversation == OpenConversation("service", when + timedelta(hours=24))
    # The first 1000 service conversations a month were free; other categories never.
    assert priced(text(csw_open=True, free_used=999), when).amount == 0
    assert priced(template("UTILITY", free_used=0), when).amount == Decimal("0.0040")


def test_category_spellings_in_open_conversations_are_normalised():
    when = at("2024-08-01T00:00:00")
    open_intl = (("authentication-international", when + HOUR),)
    c = priced(template("AUTHENTICATION", recipient=INDIA, auth_international=True,
                        open_conversations=open_intl), when)
    assert (c.amount, c.opens_conversation) == (0, None)


# --- 2024-06-01: authentication-international -----------------------------------------------

def test_2024_06_01_authentication_international_rate():
    facts = template("AUTHENTICATION", recipient=INDIA, auth_international=True)
    before = priced(facts, at("2024-05-31T23:59:59"))
    after = priced(facts, at("2024-06-01T00:00:00"))
    assert (before.category, before.amount) == ("authentication", Decimal("0.0014"))
    assert (after.category, after.amount) == ("authentication_international", Decimal("0.0280"))
    # Not eligible, or a market without such a rate: the ordinary authentication rate.
    assert priced(replace(facts, auth_international=False), at("2025-08-01T00:00:00")).amount == Decimal("0.0014")
    us = priced(template("AUTHENTICATION", auth_international=True), at("2025-08-01T00:00:00"))
    assert (us.category, us.amount) == ("authentication", Decimal("0.0135"))


# --- 2024-11-01: free service ---------------------------------------------------------------

def test_2024_11_01_service_conversations_become_free():
    facts = text(csw_open=True, free_used=5000)
    before = priced(facts, at("2024-10-31T23:59:59"))
    after = priced(facts, at("2024-11-01T00:00:00"))
    assert (before.billable, before.amount, before.pricing_type) == (True, Decimal("0.0045"), "regular")
    assert (after.billable, after.amount, after.pricing_type) == (False, 0, "free_customer_service")
    # The free service conversation still opens, so a later reply does not open another.
    assert after.opens_conversation == OpenConversation("service", at("2024-11-02T00:00:00"))


# --- 2025-07-01: per-message ----------------------------------------------------------------

def test_2025_07_01_every_delivered_template_is_charged():
    before, after = at("2025-06-30T23:59:59"), at("2025-07-01T00:00:00")
    marketing_open = (OpenConversation("marketing", after + HOUR),)
    facts = template("MARKETING", open_conversations=marketing_open)
    assert priced(facts, before).amount == 0  # rides on the open marketing conversation
    c = priced(facts, after)
    assert (c.pricing_model, c.category, c.pricing_type, c.amount) == ("PMP", "marketing", "regular", Decimal("0.0250"))
    assert c.opens_conversation is None


def test_pmp_free_cases():
    when = at("2025-07-01T00:00:00")
    service = priced(text(csw_open=True), when)
    assert (service.category, service.pricing_type, service.billable, service.amount) == (
        "service", "free_customer_service", False, 0)
    utility = priced(template("UTILITY", csw_open=True), when)
    assert (utility.category, utility.pricing_type, utility.amount) == ("utility", "free_customer_service", 0)
    assert priced(template("UTILITY", csw_open=False), when).amount == Decimal("0.0040")
    assert priced(template("MARKETING", csw_open=True), when).amount == Decimal("0.0250")
    fep = priced(template("MARKETING", fep_open=True), when)
    assert (fep.category, fep.pricing_type, fep.billable, fep.amount) == (
        "referral_conversion", "free_entry_point", False, 0)


def test_only_delivered_messages_are_billed_but_quote_assumes_delivery():
    when = at("2025-08-01T00:00:00")
    facts = template("MARKETING", delivered=False)
    sent = priced(facts, when)
    assert (sent.billable, sent.amount) == (False, 0)
    assert "not delivered" in sent.reason
    assert quote(facts, when, card=CARD).amount == Decimal("0.0250")
    # CBP: an undelivered message opens no conversation.
    assert priced(facts, at("2024-01-01T00:00:00")).opens_conversation is None


# --- 2026-10-01: service billed ---------------------------------------------------------------

def test_2026_10_01_service_and_in_window_utility_are_billed():
    before, after = at("2026-09-30T23:59:59"), at("2026-10-01T00:00:00")
    reply = text(csw_open=True)
    assert priced(reply, before).amount == 0
    billed = priced(reply, after)
    assert (billed.category, billed.pricing_type, billed.billable, billed.amount) == (
        "service", "regular", True, Decimal("0.0045"))
    utility = template("UTILITY", csw_open=True)
    assert priced(utility, before).amount == 0
    assert priced(utility, after).amount == Decimal("0.0040")
    # The free entry point stays free.
    assert priced(text(csw_open=True, fep_open=True), after).amount == 0
    assert priced(template("MARKETING", fep_open=True), after).amount == 0


def test_service_rate_defaults_to_the_utility_list_rate_without_tiers():
    when = at("2026-10-01T00:00:00")
    c = priced(text(csw_open=True, recipient="+4930123456", tier_count=50000), when)
    assert (c.market, c.amount) == ("Other", Decimal("0.0080"))


def test_free_service_allowance():
    card = parse_rate_card({**CARD_DATA, "free_service_allowance": 2})
    when = at("2026-11-05T00:00:00")
    for used, amount in ((0, "0"), (1, "0"), (2, "0.0045"), (3, "0.0045")):
        c = charge(text(csw_open=True, free_used=used), when, card=card)
        assert c.amount == Decimal(amount) and c.billable
    # Before service was billed the allowance changes nothing; it is never for templates.
    assert charge(template("UTILITY", free_used=0), when, card=card).amount == Decimal("0.0040")
    assert CARD.free_service_allowance == 0
    assert priced(text(csw_open=True, free_used=0), when).amount == Decimal("0.0045")


# --- volume tiers and markets ------------------------------------------------------------------

@pytest.mark.parametrize(
    "category, count, amount",
    [
        ("UTILITY", 0, "0.0040"),
        ("UTILITY", 99999, "0.0040"),  # the 100 000th billable message of the month
        ("UTILITY", 100000, "0.0030"),  # the 100 001st
        ("AUTHENTICATION", 9, "0.0135"),
        ("AUTHENTICATION", 10, "0.0100"),
        ("MARKETING", 10**7, "0.0250"),  # marketing has no tiers
    ],
)
def test_volume_tiers(category, count, amount):
    assert priced(template(category, tier_count=count), at("2025-09-01T00:00:00")).amount == Decimal(amount)


@pytest.mark.parametrize(
    "recipient, market",
    [
        ("+15551234567", "North America"),  # unassigned 555 number: by calling code
        ("15551234567", "North America"),  # a wa_id has no plus
        ("+1 416 555 0100", "North America"),
        ("+18765551234", "Caribbean"),  # +1 876 is Jamaica, not North America
        ("+919876543210", "India"),
        ("91", "India"),
        ("+1", "North America"),
        ("44", "Other"),  # a listed calling code of an unlisted country
        ("+4930123456", "Other"),
        ("999", "Other"),  # unassigned calling code
        ("not a number", "Other"),
        ("", "Other"),
    ],
)
def test_market_mapping(recipient, market):
    assert CARD.market_for(recipient).name == market
    assert priced(template("MARKETING", recipient=recipient), at("2025-09-01T00:00:00")).market == market


def test_region_of():
    assert region_of("+18765551234") == "JM"
    assert region_of("7") == "RU"
    assert region_of("+77012345678") == "KZ"
    assert region_of("+") is None


def test_missing_legacy_rate_is_a_clear_error():
    with pytest.raises(MissingRate, match="'Other' has no business_initiated rate"):
        priced(template("MARKETING", recipient="44", free_used=1000), at("2022-03-01T00:00:00"))


# --- the status webhook as truth ------------------------------------------------------------

def test_webhook_pricing_overrides_the_facts():
    when = at("2025-09-01T00:00:00")
    # Facts say a utility template outside the window; Meta says it was inside.
    hook = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "utility"}
    c = priced(template("UTILITY"), when, hook)
    assert (c.billable, c.pricing_type, c.category, c.amount) == (False, "free_customer_service", "utility", 0)
    hook = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    c = priced(template("UTILITY", csw_open=True), when, hook)
    assert (c.billable, c.category, c.amount) == (True, "marketing", Decimal("0.0250"))


def test_webhook_type_wins_over_the_deprecated_billable_flag():
    when = at("2025-09-01T00:00:00")
    c = priced(template("MARKETING"), when, {"billable": True, "pricing_model": "PMP",
                                               "type": "free_entry_point", "category": "referral_conversion"})
    assert (c.billable, c.pricing_type, c.amount) == (False, "free_entry_point", 0)
    # referral_conversion is only ever the free entry point.
    c = priced(template("MARKETING"), when, {"billable": True, "pricing_model": "PMP",
                                               "type": "regular", "category": "referral_conversion"})
    assert (c.billable, c.pricing_type, c.amount) == (False, "free_entry_point", 0)
    # No billable flag at all (after Meta drops it): derived from the type.
    c = priced(template("UTILITY"), when, {"pricing_model": "PMP", "type": "regular", "category": "utility"})
    assert (c.billable, c.amount) == (True, Decimal("0.0040"))
    # An unknown future type: the flag decides while it exists.
    c = priced(template("UTILITY"), when, {"billable": False, "pricing_model": "PMP",
                                            "type": "free_group_customer_service", "category": "service"})
    assert (c.billable, c.amount) == (False, 0)


@pytest.mark.parametrize("spelling", ["authentication-international", "authentication_international",
                                      "AUTHENTICATION_INTERNATIONAL"])
def test_webhook_authentication_international_spellings(spelling):
    hook = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": spelling}
    c = priced(template("AUTHENTICATION", recipient=INDIA), at("2025-09-01T00:00:00"), hook)
    assert (c.category, c.amount) == ("authentication_international", Decimal("0.0280"))
    # A market without such a rate falls back to its authentication rate.
    c = priced(template("AUTHENTICATION"), at("2025-09-01T00:00:00"), hook)
    assert c.amount == Decimal("0.0135")


def test_webhook_as_types_pricing_and_marketing_lite():
    hook = Pricing(billable=True, pricing_model="PMP", type="regular", category="marketing_lite")
    c = priced(template("MARKETING"), at("2025-09-01T00:00:00"), hook)
    assert (c.category, c.amount) == ("marketing_lite", Decimal("0.0250"))


def test_webhook_service_regular_after_2026_10_01():
    hook = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "service"}
    c = priced(text(csw_open=True), at("2026-10-02T00:00:00"), hook)
    assert (c.billable, c.category, c.amount) == (True, "service", Decimal("0.0045"))


def test_legacy_cbp_webhook_without_type():
    when = at("2024-03-01T00:00:00")
    hook = {"billable": True, "pricing_model": "CBP", "category": "utility"}
    first = priced(template("UTILITY"), when, hook)
    assert (first.pricing_model, first.pricing_type, first.amount) == ("CBP", "regular", Decimal("0.0040"))
    assert first.opens_conversation == OpenConversation("utility", when + timedelta(hours=24))
    later = when + HOUR
    second = priced(template("UTILITY", open_conversations=(first.opens_conversation,)), later, hook)
    assert (second.billable, second.amount, second.opens_conversation) == (True, 0, None)
    fep = priced(template("MARKETING"), when, {"billable": False, "pricing_model": "CBP",
                                                "category": "referral_conversion"})
    assert (fep.pricing_type, fep.amount) == ("free_entry_point", 0)
    assert fep.opens_conversation == OpenConversation("referral_conversion", when + timedelta(hours=72))
    free_service = priced(text(csw_open=True), at("2025-01-10T00:00:00"),
                          {"billable": False, "pricing_model": "CBP", "category": "service"})
    assert (free_service.pricing_type, free_service.billable, free_service.amount) == (
        "free_customer_service", False, 0)


def test_webhook_pricing_model_beats_the_utc_calendar():
    # A CBP conversation opened before the switch was still billed as CBP after it.
    c = priced(template("MARKETING"), at("2025-07-01T03:00:00"),
               {"billable": True, "pricing_model": "CBP", "category": "marketing"})
    assert (c.pricing_model, c.period) == ("CBP", "cbp_v3")
    # PMP started at midnight in the WABA's time zone, which may be before UTC midnight.
    c = priced(template("UTILITY", csw_open=True), at("2025-06-30T21:00:00"),
               {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "utility"})
    assert (c.pricing_model, c.period, c.amount, c.opens_conversation) == ("PMP", "pmp", 0, None)


def test_webhook_does_not_bill_an_undelivered_message():
    hook = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    c = priced(template("MARKETING", delivered=False), at("2025-09-01T00:00:00"), hook)
    assert (c.billable, c.amount, c.category) == (False, 0, "marketing")


# --- facts and results ----------------------------------------------------------------------

def test_message_facts_validation():
    with pytest.raises(ValueError, match="template category"):
        MessageFacts(is_template=True)
    with pytest.raises(ValueError, match="template category"):
        MessageFacts(is_template=True, category="PROMO")
    with pytest.raises(ValueError, match="non-template"):
        MessageFacts(is_template=False, category="UTILITY")
    with pytest.raises(ValueError, match="tier_count"):
        MessageFacts(is_template=False, tier_count=-1)
    with pytest.raises(ValueError, match="naive"):
        MessageFacts(is_template=False, open_conversations=[("service", datetime(2024, 1, 1))])
    facts = MessageFacts(is_template=True, category="utility",
                         open_conversations=[("Utility", at("2024-01-01T00:00:00"))])
    assert facts.category == "UTILITY"
    assert facts.open_conversations == (OpenConversation("utility", at("2024-01-01T00:00:00")),)


def test_charge_as_dict_is_json_ready():
    c = priced(template("MARKETING"), at("2024-03-01T00:00:00"))
    data = json.loads(json.dumps(c.as_dict()))
    assert data["amount"] == "0.0250" and data["currency"] == "EUR"
    assert data["opens_conversation"] == {"category": "marketing", "expires_at": "2024-03-02T00:00:00+00:00"}
    assert isinstance(c.amount, Decimal)


def test_open_conversations_after():
    when = at("2024-03-01T00:00:00")
    charges = [priced(template("MARKETING"), when), priced(text(csw_open=True), when),
               priced(template("UTILITY", delivered=False), when)]
    assert pricing.open_conversations_after(charges, when + HOUR) == (
        OpenConversation("marketing", when + timedelta(hours=24)),
        OpenConversation("service", when + timedelta(hours=24)),
    )
    assert pricing.open_conversations_after(charges, when + timedelta(hours=24)) == ()


def test_quote_uses_the_bundled_example_card_by_default():
    c = quote(template("MARKETING"), at("2025-09-01T00:00:00"))
    assert (c.currency, c.market, c.amount) == ("USD", "North America", Decimal("0.0250"))


# --- properties -------------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2027, 12, 31),
                       timezones=st.just(timezone.utc))
recipients = st.sampled_from([US, INDIA, "+18765551234", "+4930123456", "91", "1", ""])


@st.composite
def facts_strategy(draw):
    is_template = draw(st.booleans())
    when = draw(moments)
    opens = draw(st.lists(st.tuples(
        st.sampled_from(["marketing", "utility", "authentication", "service", "referral_conversion"]),
        st.integers(min_value=-48, max_value=48).map(lambda h: when + timedelta(hours=h))), max_size=3))
    facts = MessageFacts(
        is_template=is_template,
        category=draw(st.sampled_from(sorted(pricing.TEMPLATE_CATEGORIES))) if is_template else None,
        recipient=draw(recipients),
        csw_open=draw(st.booleans()),
        fep_open=draw(st.booleans()),
        delivered=draw(st.booleans()),
        open_conversations=tuple(opens),
        tier_count=draw(st.integers(min_value=0, max_value=300000)),
        free_used=draw(st.integers(min_value=0, max_value=2000)),
        auth_international=draw(st.booleans()),
    )
    return facts, when


full_card = parse_rate_card({**CARD_DATA, "markets": {
    name: {**rates, **{k: "0.0100" for k in ("business_initiated", "user_initiated", "notification")
                       if k not in rates}}
    for name, rates in CARD_DATA["markets"].items()}})

hooks = st.one_of(st.none(), st.fixed_dictionaries({
    "billable": st.booleans(),
    "pricing_model": st.sampled_from(["PMP", "CBP"]),
    "type": st.sampled_from(["regular", "free_customer_service", "free_entry_point"]),
    "category": st.sampled_from(["marketing", "marketing_lite", "utility", "authentication",
                                 "authentication-international", "service", "referral_conversion"]),
}))


@settings(max_examples=300)
@given(drawn=facts_strategy(), hook=hooks)
def test_charges_are_never_negative_and_free_types_never_cost(drawn, hook):
    facts, when = drawn
    c = charge(facts, when, hook, card=full_card)
    assert c.amount >= 0
    assert c.currency == "EUR"
    if c.pricing_type in ("free_customer_service", "free_entry_point") or not c.billable:
        assert c.amount == 0
    if not facts.delivered:
        assert c.amount == 0 and c.opens_conversation is None
    if hook is not None and hook["type"] != "regular":
        assert c.amount == 0
    q = quote(facts, when, card=full_card)
    assert q.amount >= 0
    if facts.delivered and hook is None:
        assert q == c


@given(drawn=facts_strategy())
def test_free_entry_point_is_always_free_from_2022(drawn):
    facts, when = drawn
    c = quote(replace(facts, fep_open=True), when, card=full_card)
    if when >= at("2022-02-01T00:00:00"):
        assert (c.pricing_type, c.amount) == ("free_entry_point", 0)


# --- rate card validation -------------------------------------------------------------------

def _card(**changes):
    data = json.loads(json.dumps(CARD_DATA))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return data


_DELETE = object()
NA = "markets__North America__"


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"currency": _DELETE}, "currency:"),
        ({"currency": "usd"}, "currency:"),
        ({"currency": "EURO"}, "currency:"),
        ({"free_service_allowance": -1}, "free_service_allowance:"),
        ({"free_service_allowance": "1000"}, "free_service_allowance:"),
        ({"free_service_allowance": True}, "free_service_allowance:"),
        ({"rates": {}}, "rates: unknown key"),
        ({"markets": {}}, "markets:"),
        ({"markets": "all"}, "markets:"),
        ({"default_market": "Mars"}, "default_market: 'Mars' is not a market"),
        ({"countries__GB": "Europe"}, "countries.GB: 'Europe' is not a market"),
        ({"countries__UK": "Other"}, "countries.UK: not an ISO region"),
        ({"countries": ["US"]}, "countries:"),
        ({NA + "marketing": "-0.01"}, "markets.North America.marketing: must not be negative"),
        ({NA + "marketing": "cheap"}, "markets.North America.marketing: 'cheap' is not a decimal"),
        ({NA + "marketing": True}, "markets.North America.marketing: must be a decimal"),
        ({NA + "marketing": "NaN"}, "markets.North America.marketing: must be a finite"),
        ({NA + "marketing": float("inf")}, "markets.North America.marketing: must be a finite"),
        ({NA + "marketing": [[0, "0.02"]]}, "markets.North America.marketing: volume tiers are only"),
        ({NA + "service": [[0, "0.02"]]}, "markets.North America.service: volume tiers are only"),
        ({NA + "utility": []}, "markets.North America.utility: needs at least one"),
        ({NA + "utility": [[5, "0.004"]]}, "markets.North America.utility[0]: the first tier must start at 0"),
        ({NA + "utility": [[0, "0.004"], [0, "0.003"]]}, "markets.North America.utility[1]: tiers must be in increasing"),
        ({NA + "utility": [[0, "0.004"], [-5, "0.003"]]}, "markets.North America.utility[1]: from_count"),
        ({NA + "utility": [[0, "0.004"], "x"]}, "markets.North America.utility[1]: must be a [from_count, rate]"),
        ({NA + "utility": [[0, "-1"]]}, "markets.North America.utility[0]: must not be negative"),
        ({NA + "utility": _DELETE}, "markets.North America.utility: missing"),
        ({NA + "marketting": "0.02"}, "markets.North America.marketting: unknown category"),
        ({"markets__Other": "0.01"}, "markets.Other: must be a table"),
        ({"note": 5}, "note:"),
    ],
)
def test_bad_rate_cards_name_the_key(changes, key):
    with pytest.raises(ConfigError) as err:
        parse_rate_card(_card(**changes), "cards/bad.toml")
    assert f"rate card cards/bad.toml: {key}" in str(err.value)


def test_bundled_example_card_is_valid_and_labelled():
    card = load_rate_card("")
    assert card.example and card.source == str(EXAMPLE_CARD)
    assert "EXAMPLE" in card.note and "EXAMPLE" in EXAMPLE_CARD.read_text()
    assert card.default_market == "Other" and card.free_service_allowance == 0
    assert load_rate_card(None) is card  # parsed once, reused


CARD_TOML = """
currency = "GBP"
default_market = "Rest"
[countries]
GB = "UK"
[markets.UK]
marketing = "0.04"
utility = [[0, "0.02"], [1000, "0.015"]]
authentication = 0.03
[markets.Rest]
marketing = "0.05"
utility = "0.03"
authentication = "0.03"
"""


def test_config_names_a_card_file_and_validates_it_at_start(tmp_path):
    good = tmp_path / "card.toml"
    good.write_text(CARD_TOML)
    config = load_config(data={"whatsapp": {"rate_card": str(good)}}, environ={})
    card = rate_card_for(config)
    assert (card.currency, card.market_for("+447700900123").name) == ("GBP", "UK")
    assert card.markets["UK"].rate("authentication") == Decimal("0.03")
    assert not card.example
    c = quote(template("UTILITY", recipient="+447700900123", tier_count=1000), at("2025-09-01T00:00:00"), card=card)
    assert c.amount == Decimal("0.015")

    bad = tmp_path / "bad.toml"
    bad.write_text(CARD_TOML.replace('marketing = "0.04"', 'marketing = "-0.04"'))
    with pytest.raises(ConfigError) as err:
        load_config(environ={"HUB_WHATSAPP__RATE_CARD": str(bad)}, data={})
    assert "whatsapp.rate_card:" in str(err.value)
    assert "markets.UK.marketing: must not be negative" in str(err.value)


def test_card_file_problems_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="whatsapp.rate_card: rate card .*nope.toml does not exist"):
        load_config(data={"whatsapp": {"rate_card": str(tmp_path / "nope.toml")}}, environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[markets\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rate_card(broken)


def test_default_config_uses_the_example_card():
    config = load_config(data={}, environ={})
    assert config.whatsapp.rate_card == ""
    assert rate_card_for(config).example
