"""SLA clocks: waiting periods, business seconds, pauses while the customer has the ball;
warnings and breaches announced once each, reassigned on breach (both databases)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import Conversation, Event
from hub.routing import sla
from hub.routing.jobs import routing_sweep
from hub.routing.sla import Beat, clocks, level, waiting_periods
from tests.support.tracking import text_message
from tests.support.whatsapp import post_signed
from tests.routing.test_engine import _fresh_rule_cache, channel, customer_writes, make_team, online, operator  # noqa: F401

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)  # a Monday
OFFICE = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def m(minutes, inbound=True, human=True):
    return Beat(at=T0 + timedelta(minutes=minutes), inbound=inbound, human=human and not inbound)


def test_waiting_periods_end_only_at_a_human_reply():
    beats = [m(0), m(1), m(2, inbound=False, human=False), m(5, inbound=False), m(30), m(40, inbound=False)]
    assert waiting_periods(beats, T0 + timedelta(hours=1)) == [
        (T0, T0 + timedelta(minutes=5)), (T0 + timedelta(minutes=30), T0 + timedelta(minutes=40))]
    assert waiting_periods([m(0)], T0 + timedelta(hours=1)) == [(T0, None)]
    assert waiting_periods([m(0, inbound=False)], T0 + timedelta(hours=1)) == [], "we wrote first: nobody waits"


def test_first_then_next_response_clocks_and_resolution_paused_while_the_customer_has_the_ball():
    policy = {"first_response_seconds": 300, "next_response_seconds": 600, "resolution_seconds": 3600}
    now = T0 + timedelta(minutes=10)
    (first, resolution) = clocks(policy, {}, [], "UTC", [m(0)], now)
    assert (first.target, first.elapsed, level(first, None)) == ("first_response", 600, "breached")
    assert resolution.elapsed == 600
    beats = [m(0), m(2, inbound=False), m(60)]  # replied after 2 min; the customer wrote again at 60
    (nxt, resolution) = clocks(policy, {}, [], "UTC", beats, T0 + timedelta(minutes=65))
    assert (nxt.target, nxt.started_at, nxt.elapsed) == ("next_response", T0 + timedelta(minutes=60), 300)
    assert resolution.elapsed == 7 * 60, "2 minutes + 5 minutes: the 58 in between were the customer's"
    assert clocks(policy, {}, [], "UTC", [m(0), m(1, inbound=False)], now)[0].target == "resolution", \
        "answered: only resolution runs"


def test_clocks_count_business_hours_only():
    policy = {"first_response_seconds": 600, "warn_before_seconds": 120}
    friday_1755 = datetime(2026, 12, 11, 17, 55, tzinfo=timezone.utc)
    beats = [Beat(at=friday_1755, inbound=True, human=False)]
    monday_0903 = datetime(2026, 12, 14, 9, 3, tzinfo=timezone.utc)
    (clock,) = clocks(policy, OFFICE, [], "UTC", beats, monday_0903)
    assert clock.elapsed == 8 * 60 and level(clock, 120) == "warning"


def test_bad_policies_are_refused_by_key():
    for bad, says in [([], "expected an object"), ({"first": 1}, "unknown key"),
                      ({"first_response_seconds": 0}, "sla.first_response_seconds"),
                      ({"resolution_seconds": "1h"}, "sla.resolution_seconds"),
                      ({"reassign_on_breach": "yes"}, "reassign_on_breach"), ({"supervisor_id": "x"}, "supervisor")]:
        with pytest.raises(sla.SlaError, match=says):
            sla.validate(bad)


beat_lists = st.lists(st.tuples(st.integers(0, 5000), st.booleans(), st.booleans()), max_size=30).map(
    lambda xs: [Beat(at=T0 + timedelta(minutes=t), inbound=i, human=h and not i) for t, i, h in xs])


@settings(max_examples=200, deadline=None)
@given(beats=beat_lists, extra=st.integers(0, 5000))
def test_resolution_is_the_sum_of_the_waits_and_never_more_than_the_time_since_the_first_message(beats, extra):
    now = T0 + timedelta(minutes=5000 + extra)
    found = clocks({"resolution_seconds": 1}, OFFICE, [], "Europe/Moscow", beats, now)
    periods = waiting_periods(beats, now)
    if not periods:
        assert found == []
        return
    (resolution,) = found
    assert 0 <= resolution.elapsed <= (now - periods[0][0]).total_seconds()
    for (_lo, hi), (lo2, _hi2) in zip(periods, periods[1:]):
        assert hi is not None and hi <= lo2, "periods are ordered and do not overlap"


def _events(runtime, type_):
    with runtime.db.scope() as session:
        return [e.data for e in session.scalars(select(Event).where(Event.type == type_)
                                                 .order_by(Event.occurred_at, Event.id))]


def test_a_breach_is_announced_once_and_hands_the_chat_to_a_colleague(runtime, client, channel, admin_headers):
    (ana, ana_headers), (ben, _b), (boss, _s) = operator(runtime, "ana"), operator(runtime, "ben"), \
        operator(runtime, "boss", role="admin")
    online(client, admin_headers, ana)
    make_team(client, admin_headers, [ana, ben], strategy="least_busy",
              sla={"first_response_seconds": 60, "next_response_seconds": 120, "warn_before_seconds": 20,
                   "reassign_on_breach": True, "supervisor_id": boss})
    customer_writes(client, channel[1])
    with runtime.db.scope() as session:
        conversation = session.scalars(select(Conversation)).one()
        cid, opened = conversation.id, conversation.opened_at
    assert routing_sweep(runtime, opened + timedelta(seconds=30))["sla_warnings"] == 0
    assert routing_sweep(runtime, opened + timedelta(seconds=45))["sla_warnings"] == 1
    assert routing_sweep(runtime, opened + timedelta(seconds=50))["sla_warnings"] == 0, "once"
    online(client, admin_headers, ben)
    swept = routing_sweep(runtime, opened + timedelta(seconds=61))
    assert (swept["sla_breaches"], routing_sweep(runtime, opened + timedelta(seconds=90))["sla_breaches"]) == (1, 0)
    (breach,) = _events(runtime, "sla.breached")
    assert (breach["target"], breach["target_seconds"], breach["assignee"]["id"], breach["supervisor"]["id"],
            breach["reassigned_to"]["id"]) == ("first_response", 60, ana, boss, ben)
    with runtime.db.scope() as session:
        assert session.get(Conversation, cid).assignee_id == ben

    # A bot's message answers nothing; a person's does; the customer writing again starts a next-response clock.
    r = client.post("/api/v1/messages", json={"conversation_id": cid, "type": "text", "text": {"body": "On it"}},
                    headers=ana_headers)
    assert r.status_code == 202
    later = utcnow()
    assert routing_sweep(runtime, later + timedelta(seconds=500))["sla_breaches"] == 0, "answered"
    wa_id = breach["contact"]["wa_id"]
    # WhatsApp stamps whole seconds: the customer's next message is a second or two after the reply.
    again = int(later.timestamp()) + 2
    assert post_signed(client, channel[1], text_message("And the price?", wa_id=wa_id, timestamp=again)).status_code \
        == 200
    swept = routing_sweep(runtime, later + timedelta(seconds=2 + 125))
    assert swept["sla_breaches"] == 1
    assert [b["target"] for b in _events(runtime, "sla.breached")] == ["first_response", "next_response"]


def test_teams_without_a_policy_have_no_clocks(runtime, client, channel, admin_headers):
    (ana, _a), = [operator(runtime, "ana")]
    online(client, admin_headers, ana)
    make_team(client, admin_headers, [ana])
    customer_writes(client, channel[1])
    swept = routing_sweep(runtime, utcnow() + timedelta(days=3))
    assert (swept["sla_warnings"], swept["sla_breaches"]) == (0, 0)


def test_a_policy_naming_a_missing_supervisor_is_refused(client, admin_headers):
    r = client.post("/api/v1/teams", json={"name": "T", "sla": {"supervisor_id": 424242}}, headers=admin_headers)
    assert r.status_code == 422 and "sla" in r.json["errors"]["json"]
