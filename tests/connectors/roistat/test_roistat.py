"""Roistat against its emulator: statuses by Test connection, one order per conversation
that follows its deal, refusals in the delivery log, the settings form."""
from __future__ import annotations

import json

import pytest
import requests
from marshmallow import ValidationError

from connectors.roistat import RoistatConnector, emulator
from tests.support.analytics import connector, fixture, hub_event
from tests.support.links import MemoryLinks

SETTINGS = {"project": "12345", "api_key": "emulator-roistat-key-1"}


def event(name, event_id="evt-1"):
    return hub_event(fixture("roistat", name)["event"], event_id=event_id)


@pytest.fixture
def rs():
    with emulator.serve() as served:
        yield served


def roistat(rs, links=None, **settings):
    return connector(RoistatConnector, {**SETTINGS, "api_url": rs.base_url + "/api/v1", **settings},
                     requests.Session(), links or MemoryLinks())


def test_the_lead_becomes_one_order_that_follows_its_deal_once(rs):
    links = MemoryLinks()
    assert roistat(rs, links).check().ok and set(rs.statuses) == {"new", "paid", "canceled"}
    outcomes = roistat(rs, links).deliver([event("new_order_on_first_message.json", "e1"),
                                           event("paid_order_on_won.json", "e2"),
                                           event("paid_order_on_won.json", "e3")])
    assert [o.status for o in outcomes] == ["done"] * 3 and "already sent" in outcomes[2].response["skipped"]
    assert list(rs.orders) == ["whatsapp-34"]
    order = rs.orders["whatsapp-34"]
    assert (order["status"], order["price"], order["roistat"]) == ("paid", "22500.00", "4336465")
    assert [o["status"] for o in rs.history] == ["new", "paid"]


def test_a_refused_key_is_dead_saying_so(rs):
    [outcome] = roistat(rs, api_key="wrong-roistat-key").deliver([event("paid_order_on_won.json")])
    assert outcome.status == "dead" and "Roistat refused the API key (authentication_failed)" in outcome.error
    assert "wrong-roistat-key" not in json.dumps(outcome.response) + outcome.error
    assert not roistat(rs, api_key="wrong-roistat-key").check().ok


def test_limits_and_server_errors_are_retried(rs):
    links = MemoryLinks()
    rs.fail_next(1, 429)
    rs.fail_next(1, 503)
    statuses = [roistat(rs, links).deliver([event("paid_order_on_won.json")])[0].status for _ in range(3)]
    assert statuses == ["retry", "retry", "done"] and len(rs.history) == 1


def test_a_status_roistat_does_not_know_is_dead_with_its_words(rs):
    roistat(rs).check()
    [outcome] = roistat(rs, goals=["won -> shipped = amount"]).deliver([event("paid_order_on_won.json")])
    assert outcome.status == "dead" and "unknown status 'shipped'" in outcome.error


def test_the_form_refuses_bad_status_lines_by_field():
    with pytest.raises(ValidationError) as info:
        RoistatConnector.Settings().load({**SETTINGS, "statuses": ["paid = Оплачен | done"]})
    assert "line 1" in info.value.messages["statuses"][0]
