"""Meta CAPI against its emulator: once per (deal, goal), Meta's refusals in the delivery
log (token, rate limits, old events), Meta's own deduplication, the settings form."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests
from marshmallow import ValidationError

from connectors.analytics import SENT
from connectors.meta_capi import MetaCapiConnector, emulator
from tests.support.analytics import connector, fixture, hub_event
from tests.support.links import MemoryLinks

SETTINGS = fixture("meta_capi", "purchase_on_won.json")["settings"]


def purchase(event_id="evt-1", deal_id=None):
    spec = fixture("meta_capi", "purchase_on_won.json")["event"]
    if deal_id:
        spec["data"]["deal"]["id"] = deal_id
    return hub_event(spec, event_id=event_id)


@pytest.fixture
def meta():
    occurred = purchase().occurred_at.timestamp()
    with emulator.serve(clock=lambda: occurred + 3600) as served:
        yield served


def capi(meta, links=None, **settings):
    return connector(MetaCapiConnector, {**SETTINGS, "graph_url": meta.base_url, **settings}, requests.Session(),
                     links or MemoryLinks())


def test_one_purchase_per_deal_whatever_the_crm_repeats(meta):
    links = MemoryLinks()
    assert capi(meta, links).check().ok
    outcomes = capi(meta, links).deliver([purchase("evt-1"), purchase("evt-2")])
    assert [o.status for o in outcomes] == ["done", "done"]
    assert outcomes[1].response == {"skipped": "already sent: Purchase (once per deal and goal)"}
    [stored] = meta.received("Purchase")
    assert stored["custom_data"] == {"currency": "RUB", "value": 22500.0} and stored["event_id"] == "deal-2-25399013-Purchase"


def test_a_resend_after_a_lost_answer_is_absorbed_by_metas_deduplication(meta):
    links = MemoryLinks()
    capi(meta, links).deliver([purchase()])
    links.links = {k: v for k, v in links.links.items() if k[0] != SENT}  # killed before the mark
    assert capi(meta, links).deliver([purchase("evt-again")])[0].status == "done"
    assert len(meta.received("Purchase")) == 1 and meta.duplicates == 1


def test_a_refused_token_is_dead_with_the_reason_and_never_logged(meta):
    [outcome] = capi(meta, access_token="EAAG-revoked-token").deliver([purchase()])
    assert outcome.status == "dead" and "Meta refused the access token" in outcome.error and "code 190" in outcome.error
    assert "EAAG-revoked-token" not in json.dumps(outcome.response) + outcome.error
    result = capi(meta, access_token="EAAG-revoked-token").check()
    assert not result.ok and "access token" in result.message


def test_temporary_errors_and_rate_limits_are_retried_then_sent(meta):
    links = MemoryLinks()
    meta.fail_next(1, 500, code=2)
    meta.fail_next(1, 400, code=4, message="Application request limit reached")
    outcomes = [capi(meta, links).deliver([purchase()])[0] for _ in range(3)]
    assert [o.status for o in outcomes] == ["retry", "retry", "done"]
    assert "Application request limit reached" in outcomes[1].error and len(meta.received()) == 1


def test_an_event_older_than_seven_days_is_dead_with_metas_words():
    with emulator.serve(clock=lambda: datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()) as late:
        [outcome] = capi(late).deliver([purchase()])
    assert outcome.status == "dead" and "more than 7 days ago" in outcome.error and "2804003" in outcome.error


@pytest.mark.parametrize("field, value, words", [
    ("goals", ["won -> Lead"], "is not an event Meta accepts for business messaging"),
    ("dataset_id", "pixel-1", "digits"),
    ("api_version", "21", "v21.0"),
])
def test_the_form_refuses_bad_settings_by_field(field, value, words):
    with pytest.raises(ValidationError) as info:
        MetaCapiConnector.Settings().load({**SETTINGS, field: value})
    assert words in json.dumps(info.value.messages[field])
