"""Routing rule conditions: refused by name when unusable; matched on a conversation's facts."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hub.routing.rules import Facts, RuleError, matches, validate

MONDAY_10_UTC = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def facts(**kw):
    return Facts(**{"channel_id": 1, "now": MONDAY_10_UTC, **kw})


def test_no_conditions_match_everything():
    assert matches({}, facts())


def test_channel_keywords_and_contact_fields():
    assert matches({"channel_ids": [1, 2]}, facts())
    assert not matches({"channel_ids": [2]}, facts())
    assert matches({"keywords": ["цена", "price"]}, facts(first_text="Какая ЦЕНА доставки?"))
    assert matches({"keywords": ["ещё"]}, facts(first_text="Есть ЕЩЕ размеры?")), "ё and е are one letter"
    assert not matches({"keywords": ["price"]}, facts(first_text="hello"))
    assert matches({"contact": {"name": "ооо"}}, facts(contact={"name": "ООО Ромашка"}))
    assert not matches({"contact": {"name": "ооо"}}, facts(contact={"name": None}))


def test_lead_source_utm_and_ads():
    tracked = {"kind": "tracked_link", "utm_source": "Google", "utm_campaign": "autumn"}
    assert matches({"lead_kinds": ["tracked_link"], "utm_source": ["google"]}, facts(lead_source=tracked))
    assert not matches({"utm_campaign": ["spring"]}, facts(lead_source=tracked))
    ad = {"kind": "referral", "referral": {"source_type": "ad", "ctwa_clid": "x"}}
    assert matches({"lead_kinds": ["ad"]}, facts(lead_source=ad))
    assert not matches({"lead_kinds": ["ad"]}, facts(lead_source=None))


def test_time_of_day_in_a_zone_and_past_midnight():
    assert matches({"hours": ["09:00", "18:00"]}, facts())
    assert not matches({"hours": ["09:00", "18:00"], "time_zone": "Asia/Vladivostok"}, facts())  # 20:00 there
    assert matches({"hours": ["19:00", "02:00"], "time_zone": "Asia/Vladivostok"}, facts())


@pytest.mark.parametrize("conditions, says", [
    ([], "expected an object"),
    ({"colour": ["red"]}, "unknown condition"),
    ({"channel_ids": []}, "conditions.channel_ids: expected a non-empty list"),
    ({"channel_ids": ["1"]}, "list of ids"),
    ({"keywords": ["  "]}, "empty text"),
    ({"contact": {"email": "x"}}, "'email' is not a contact field"),
    ({"hours": ["09:00"]}, "expected \\[start, end\\]"),
    ({"hours": ["09:00", "09:00"]}, "the same"),
    ({"hours": ["9", "18:00"]}, "not HH:MM"),
    ({"time_zone": "Nowhere/City"}, "conditions.time_zone"),
])
def test_bad_conditions_are_refused_by_name(conditions, says):
    with pytest.raises(RuleError, match=says):
        validate(conditions)
