"""Triggers, one test each, the clock passed in."""
from datetime import datetime, timezone

from hub.automations.triggers import Happening, matches

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)  # a Monday


def message(text="", **kw):
    return Happening(kind="message", at=kw.pop("at", NOW), channel_id=kw.pop("channel_id", 1), text=text, **kw)


def test_conversation_started_optionally_from_a_campaign():
    assert matches({"type": "conversation_started"}, message("hi", started=True)) == {"type": "conversation_started"}
    assert matches({"type": "conversation_started"}, message("hi", started=False)) is None
    wanted = {"type": "conversation_started", "source": {"utm_campaign": "Winter"}}
    assert matches(wanted, message("hi", started=True, lead_source={"utm_campaign": "winter", "kind": "link"}))
    assert matches(wanted, message("hi", started=True, lead_source={"utm_campaign": "summer"})) is None
    ad = {"type": "conversation_started", "source": {"ad": True}}
    assert matches(ad, message("hi", started=True, lead_source={"referral": {"source_id": "1"}}))
    assert matches(ad, message("hi", started=True, lead_source={})) is None
    link = {"type": "conversation_started", "source": {"link": "promo"}}
    assert matches(link, message("hi", started=True, lead_source={"link": "promo"}))


def test_keyword_exact_contains_regex_synonyms_and_case_folding():
    contains = {"type": "keyword", "match": "contains", "keywords": ["цена"], "synonyms": ["сколько стоит", "price"]}
    assert matches(contains, message("А ЦЕНА какая?"))["keyword"] == "цена"
    assert matches(contains, message("Сколько СТОИТ доставка"))["keyword"] == "сколько стоит"
    assert matches(contains, message("What's the PRICE"))["keyword"] == "price"
    assert matches(contains, message("ценами не интересуюсь")) is None  # a word, not a substring
    exact = {"type": "keyword", "match": "exact", "keywords": ["ЁЛКА"]}
    assert matches(exact, message("елка!"))
    assert matches(exact, message("елка зеленая")) is None
    regex = {"type": "keyword", "match": "regex", "keywords": [r"order\s*#?\d+"]}
    assert matches(regex, message("where is ORDER #123"))
    assert matches(regex, message("where is my order")) is None


def test_button_or_list_reply():
    t = {"type": "button_reply", "ids": ["yes", "row-2"]}
    assert matches(t, message("Yes", reply_id="yes"))["reply_id"] == "yes"
    assert matches(t, message("No", reply_id="no")) is None
    assert matches(t, message("yes")) is None  # typed, not pressed


def test_crm_stage_entered():
    t = {"type": "deal_stage", "stage": "Shipped", "delay_minutes": 30}
    assert matches(t, Happening(kind="deal_stage", at=NOW, stage="shipped")) == {"type": "deal_stage", "stage": "shipped"}
    assert matches(t, Happening(kind="deal_stage", at=NOW, stage="Paid")) is None
    assert matches(t, message("Shipped")) is None


def test_no_reply_for_n_hours():
    t = {"type": "no_reply", "hours": 23}
    assert matches(t, Happening(kind="no_reply", at=NOW, silent_hours=23.5))
    assert matches(t, Happening(kind="no_reply", at=NOW, silent_hours=5)) is None


def test_off_hours_with_the_time_it_opens():
    t = {"type": "off_hours", "hours": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]]},
         "time_zone": "Europe/Moscow"}
    assert matches(t, message("hi", at=NOW)) is None  # 13:00 in Moscow
    late = matches(t, message("hi", at=datetime(2026, 12, 7, 16, 30, tzinfo=timezone.utc)))  # 19:30
    assert late == {"type": "off_hours", "opens_at": "2026-12-08 09:00", "opens_time": "09:00"}


def test_conversation_closed_and_manual_and_channels():
    assert matches({"type": "conversation_closed"}, Happening(kind="conversation_closed", at=NOW))
    assert matches({"type": "manual"}, Happening(kind="manual", at=NOW))
    assert matches({"type": "manual"}, message("hi")) is None
    assert matches({"type": "keyword", "keywords": ["hi"]}, message("hi", channel_id=2), channel_ids=[1]) is None
