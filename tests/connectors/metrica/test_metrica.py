"""Metrica against its emulator: uploads once per (deal, goal), a retry after a lost
answer finds its upload by comment, refusals in the delivery log, the goals check."""
from __future__ import annotations

import json

import pytest
import requests
from marshmallow import ValidationError

from connectors.metrica import MetricaConnector, emulator
from tests.support.analytics import connector, fixture, hub_event
from tests.support.links import MemoryLinks

SETTINGS = {"counter_id": 44147844, "oauth_token": "y0_emulator-metrica-token"}


def won(event_id="evt-1", attempt=1):
    event = hub_event(fixture("metrica", "deal_won_with_price.json")["event"], event_id=event_id)
    return event.__class__(**{**event.__dict__, "attempt": attempt})


@pytest.fixture
def ym():
    with emulator.serve() as served:
        yield served


def metrica(ym, links=None, **settings):
    return connector(MetricaConnector, {**SETTINGS, "api_url": ym.base_url, **settings}, requests.Session(),
                     links or MemoryLinks())


def test_goals_check_and_one_upload_per_deal_and_goal(ym):
    links = MemoryLinks()
    assert metrica(ym, links).check().ok
    outcomes = metrica(ym, links).deliver([won("evt-1"), won("evt-2")])
    assert [o.status for o in outcomes] == ["done", "done"] and "already sent" in outcomes[1].response["skipped"]
    [row] = ym.rows("deal_won")
    assert (row["ClientId"], row["Price"], row["Currency"], row["_type"]) == ("1700000000123456789", "22500.00", "RUB",
                                                                             "BASIC")


def test_a_retry_after_a_lost_answer_finds_its_upload_and_sends_nothing_twice(ym):
    links = MemoryLinks()
    ym.state.lose_answers = 1
    first = metrica(ym, links).deliver([won(attempt=1)])[0]
    assert first.status == "retry" and len(ym.uploads) == 1
    second = metrica(ym, links).deliver([won(attempt=2)])[0]
    assert second.status == "done" and "an earlier try uploaded it" in second.response["found"]
    assert len(ym.uploads) == 1 and len(ym.rows("deal_won")) == 1


def test_a_refused_token_is_dead_saying_so(ym):
    [outcome] = metrica(ym, oauth_token="y0_revoked-token-000").deliver([won()])
    assert outcome.status == "dead" and "Metrica refused the credentials (HTTP 403)" in outcome.error
    assert "y0_revoked-token-000" not in json.dumps(outcome.response) + outcome.error
    assert not metrica(ym, oauth_token="y0_revoked-token-000").check().ok


def test_a_goal_the_counter_lacks_fails_the_check_by_name(ym):
    result = metrica(ym, goals=["won -> order_paid = amount"]).check()
    assert not result.ok and "no JavaScript event goal order_paid" in result.message


def test_server_errors_are_retried_and_bad_files_dead_with_metricas_words(ym):
    ym.fail_next(1, 503)
    links = MemoryLinks()
    assert metrica(ym, links).deliver([won()])[0].status == "retry"
    assert metrica(ym, links).deliver([won()])[0].status == "done"
    future = fixture("metrica", "deal_won_with_price.json")["event"]
    future["occurred_at"] = "2099-01-01T00:00:00Z"
    future["data"]["deal"]["id"] = "77"
    [outcome] = metrica(ym).deliver([hub_event(future)])
    assert outcome.status == "dead" and "invalid_parameter: Line 2: DateTime is in the future" in outcome.error


def test_the_form_refuses_bad_goals_by_field():
    with pytest.raises(ValidationError) as info:
        MetricaConnector.Settings().load({**SETTINGS, "goals": ["won -> заказ"]})
    assert "line 1: 'won -> заказ' is not a goal rule" in info.value.messages["goals"][0]


def test_chats_need_no_goal_of_their_own(ym):
    ym.state.counters[44147844] = ["deal_won"]
    assert metrica(ym, goals=["first_message -> anything", "won -> deal_won = amount"]).check().ok
    result = metrica(ym, goals=["first_message -> anything"], chats_upload=False).check()
    assert not result.ok and "anything" in result.message
