"""Consent: opt-out keywords in any case and language on ingest, with one confirmation;
opt-in keywords; WhatsApp's marketing-preference webhook; a sentence that merely
contains STOP changes nothing."""
from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from hub.broadcasts import keywords
from hub.models import Consent, Contact, Event, Message
from tests.support.whatsapp import fixture, make_channel, post_signed

STOPS = ["STOP", "stop", "Stop!", " сТоП ", "ОТПИСАТЬСЯ", "отписаться.", "unsubscribe"]


def text_webhook(text: str, *, wa_id: str = "15557654321", n: int = 0) -> bytes:
    body = json.loads(fixture("text__plain"))
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = wa_id
    value["contacts"][0].pop("user_id", None)
    value["messages"][0]["id"] = f"wamid.consent-{wa_id}-{n}"
    value["messages"][0]["timestamp"] = str(int(time.time()) - 60 + n)
    value["messages"][0]["text"]["body"] = text
    return json.dumps(body).encode()


@pytest.mark.parametrize("said", STOPS)
def test_keyword_matching_ignores_case_and_punctuation(said):
    assert keywords.matches(said, ["STOP", "СТОП", "ОТПИСАТЬСЯ", "UNSUBSCRIBE"])


@pytest.mark.parametrize("said", ["don't stop", "STOPPED", "", "stop stop", "стопка"])
def test_sentences_are_not_keywords(said):
    assert not keywords.matches(said, ["STOP", "СТОП"])


def consents(runtime):
    with runtime.db.scope() as s:
        return {(c.subscription, c.status, c.source) for c in s.scalars(select(Consent))}


def outbound_texts(runtime):
    with runtime.db.scope() as s:
        return list(s.scalars(select(Message.text).where(Message.direction == "out")))


@pytest.mark.parametrize("said", ["СТОП", "stop", "Отписаться!"])
def test_stop_on_ingest_opts_out_of_both_subscriptions_and_confirms_once(client, runtime, said):
    _, key = make_channel(runtime)
    assert post_signed(client, key, text_webhook(said)).status_code == 200
    assert consents(runtime) == {("marketing", "opted_out", "keyword"), ("utility", "opted_out", "keyword")}
    assert outbound_texts(runtime) == [runtime.config.broadcasts.stop_reply]
    with runtime.db.scope() as s:
        assert s.scalars(select(Contact)).one().opted_out_at is not None
        assert s.scalar(select(func.count()).select_from(Event).where(Event.type == "contact.opted_out")) == 1
    # Saying it again confirms nothing twice and emits nothing more.
    assert post_signed(client, key, text_webhook("STOP", n=1)).status_code == 200
    assert len(outbound_texts(runtime)) == 1
    # START opts in again.
    assert post_signed(client, key, text_webhook("start", n=2)).status_code == 200
    assert consents(runtime) == {("marketing", "opted_in", "keyword"), ("utility", "opted_in", "keyword")}
    with runtime.db.scope() as s:
        assert s.scalars(select(Contact)).one().opted_out_at is None


def test_a_message_containing_stop_changes_nothing(client, runtime):
    _, key = make_channel(runtime)
    assert post_signed(client, key, text_webhook("please don't stop the offers")).status_code == 200
    assert consents(runtime) == set() and outbound_texts(runtime) == []


def test_configured_keywords_replace_the_defaults():
    from hub.platform.config import load_config

    config = load_config(data={"broadcasts": {"stop_keywords": ["HALT"]}}, environ={})
    assert config.broadcasts.stop_keywords == ["HALT"]
    assert keywords.matches("halt", config.broadcasts.stop_keywords)
    assert not keywords.matches("stop", config.broadcasts.stop_keywords)


def test_marketing_preference_webhook_is_recorded_with_its_source(client, runtime):
    _, key = make_channel(runtime)
    post_signed(client, key, text_webhook("hello"))
    stop = json.loads(fixture("user_preferences__stop"))
    stop["entry"][0]["changes"][0]["value"]["user_preferences"][0]["wa_id"] = "15557654321"
    assert post_signed(client, key, json.dumps(stop).encode()).status_code == 200
    assert consents(runtime) == {("marketing", "opted_out", "whatsapp_preference")}
    with runtime.db.scope() as s:
        assert s.scalars(select(Contact)).one().opted_out_at is not None
