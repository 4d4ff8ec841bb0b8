"""Routing end to end: customers' messages through the webhook, operators through the API,
the queue, off-hours replies, first responder, sticky, transfers and the sweep (both DBs)."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Conversation, Event, Message, OperatorState, QueueEntry, RoutingRule, Team
from hub.routing import known
from hub.routing.jobs import routing_sweep
from hub.models.users import create_api_token, create_user
from tests.support.tracking import text_message
from tests.support.whatsapp import make_channel, post_signed

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_rule_cache():
    known.forget()
    yield
    known.forget()


@pytest.fixture
def channel(runtime):
    return make_channel(runtime)


def operator(runtime, name: str, role: str = "operator") -> tuple[int, dict[str, str]]:
    with runtime.db.scope() as session:
        user = create_user(session, email=f"{name}@example.com", password="correct horse battery", role=role,
                           now=utcnow(), name=name.title())
        token = create_api_token(session, email=user.email, name="tests", now=utcnow())
        return user.id, {"Authorization": f"Bearer {token}"}


def online(client, headers, user_id, capacity=None, presence="online"):
    body = {"presence": presence, **({"capacity": capacity} if capacity is not None else {})}
    r = client.put(f"/api/v1/operators/{user_id}/presence", json=body, headers=headers)
    assert r.status_code == 200, r.json
    return r.json


def make_team(client, admin_headers, members, **fields):
    r = client.post("/api/v1/teams", json={"name": fields.pop("name", "Sales"), "member_ids": members, **fields},
                    headers=admin_headers)
    assert r.status_code == 201, r.json
    team = r.json
    r = client.post("/api/v1/routing-rules", json={"team_id": team["id"], "conditions": {}}, headers=admin_headers)
    assert r.status_code == 201, r.json
    return team


def customer_writes(client, key, text="Hello", wa_id=None):
    wa_id = wa_id or f"1555{next(_numbers):07d}"
    assert post_signed(client, key, text_message(text, wa_id=wa_id)).status_code == 200
    return wa_id


def conversations(runtime):
    with runtime.db.scope() as session:
        return {c.id: (c.assignee_id, c.team_id, c.status)
                for c in session.scalars(select(Conversation).order_by(Conversation.id))}


def queue(runtime):
    with runtime.db.scope() as session:
        return [(e.conversation_id, e.reason, e.user_id) for e in
                session.scalars(select(QueueEntry).order_by(QueueEntry.queued_at, QueueEntry.conversation_id))]


def events(runtime, type_):
    with runtime.db.scope() as session:
        return [e.data for e in session.scalars(select(Event).where(Event.type == type_).order_by(Event.occurred_at, Event.id))]


def test_without_rules_nothing_is_routed(runtime, client, channel):
    customer_writes(client, channel[1])
    assert [a for a, _t, _s in conversations(runtime).values()] == [None]
    assert queue(runtime) == []


def test_round_robin_fills_capacity_then_queues_in_order_and_a_close_frees_a_place(
        runtime, client, channel, admin_headers):
    ops = [operator(runtime, n) for n in ("ana", "ben", "cid")]
    ids = [u for u, _h in ops]
    for user_id, headers in ops:
        online(client, admin_headers, user_id, capacity=2)
    team = make_team(client, admin_headers, ids)
    for _ in range(8):
        customer_writes(client, channel[1])
    routed = conversations(runtime)
    assigned = [a for a, _t, _s in routed.values()]
    assert assigned[:6] == [ids[0], ids[1], ids[2], ids[0], ids[1], ids[2]], "round robin in turn"
    assert assigned[6:] == [None, None]
    assert all(t == team["id"] for _a, t, _s in routed.values())
    waiting = list(routed)[6:]
    assert queue(runtime) == [(waiting[0], "no_operator", None), (waiting[1], "no_operator", None)]
    assert [e["position"] for e in events(runtime, "conversation.queued")] == [1, 2]
    r = client.get(f"/api/v1/teams/{team['id']}/queue", headers=admin_headers)
    assert [(q["conversation_id"], q["position"]) for q in r.json] == [(waiting[0], 1), (waiting[1], 2)]

    first = list(routed)[1]  # ben's
    assert client.post(f"/api/v1/conversations/{first}/close", json={}, headers=ops[1][1]).status_code == 200
    after = conversations(runtime)
    assert after[waiting[0]][0] == ids[1], "the first in line goes to whoever has room now"
    assert after[waiting[1]][0] is None
    assert queue(runtime) == [(waiting[1], "no_operator", None)]
    r = client.get("/api/v1/operators", headers=admin_headers)
    load = {o["user_id"]: o["open_conversations"] for o in r.json}
    assert all(load[i] == 2 for i in ids), "nobody above capacity"


def test_an_operator_coming_online_takes_the_waiting_chats_oldest_first(runtime, client, channel, admin_headers):
    (ana, ana_headers), = [operator(runtime, "ana")]
    make_team(client, admin_headers, [ana], strategy="least_busy")
    for _ in range(3):
        customer_writes(client, channel[1])
    assert [a for a, _t, _s in conversations(runtime).values()] == [None, None, None]
    online(client, ana_headers, ana)  # her own presence (capacity 5 by default)
    assert [a for a, _t, _s in conversations(runtime).values()] == [ana, ana, ana]
    assert queue(runtime) == []
    assigned = events(runtime, "conversation.assigned")
    assert [e["assignee"]["id"] for e in assigned] == [ana] * 3


def test_off_hours_reply_once_then_assigned_when_the_team_opens(runtime, client, channel, admin_headers):
    (ana, _h), = [operator(runtime, "ana")]
    online(client, admin_headers, ana)
    today = utcnow().date()
    closed = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    team = make_team(client, admin_headers, [ana], holidays=closed, off_hours_reply="We are closed, back tomorrow")
    wa_id = customer_writes(client, channel[1])
    customer_writes(client, channel[1], "Anyone there?", wa_id=wa_id)
    (conversation_id, (assignee, _t, _s)), = conversations(runtime).items()
    assert assignee is None
    assert queue(runtime) == [(conversation_id, "off_hours", None)]
    with runtime.db.scope() as session:
        replies = session.scalars(select(Message).where(Message.direction == "out")).all()
        assert [(m.text, m.payload.get("automated")) for m in replies] == [("We are closed, back tomorrow", "off_hours")]
        assert replies[0].author_id is None, "an automated reply is not a person's answer"

    assert client.patch(f"/api/v1/teams/{team['id']}", json={"holidays": []}, headers=admin_headers).status_code == 200
    assert routing_sweep(runtime, utcnow())["assigned"] == 1
    assert conversations(runtime)[conversation_id][0] == ana


def test_off_hours_reply_is_not_sent_when_the_window_is_closed(runtime, client, channel, admin_headers):
    today = utcnow().date()
    make_team(client, admin_headers, [], holidays=[(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)],
              off_hours_reply="closed")
    old = int((utcnow() - timedelta(hours=25)).timestamp())  # a late-delivered message: window already shut
    wa_id = f"1555{next(_numbers):07d}"
    assert post_signed(client, channel[1], text_message("hi", wa_id=wa_id, timestamp=old)).status_code == 200
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 0
    assert [r for _c, r, _u in queue(runtime)] == ["off_hours"]


def test_first_responder_offers_to_the_team_and_the_first_reply_takes_it(runtime, client, channel, admin_headers):
    (ana, ana_headers), (ben, ben_headers) = operator(runtime, "ana"), operator(runtime, "ben")
    (eve, eve_headers), = [operator(runtime, "eve")]  # not in the team
    for user_id in (ana, ben, eve):
        online(client, admin_headers, user_id)
    make_team(client, admin_headers, [ana, ben], strategy="first_responder")
    customer_writes(client, channel[1])
    (conversation_id, (assignee, _t, _s)), = conversations(runtime).items()
    assert assignee is None and queue(runtime) == [(conversation_id, "offered", None)]

    def reply(headers):
        return client.post("/api/v1/messages", json={"conversation_id": conversation_id, "type": "text",
                                                     "text": {"body": "Hi!"}}, headers=headers)

    assert reply(eve_headers).status_code == 202
    assert conversations(runtime)[conversation_id][0] is None, "someone outside the team does not take it"
    assert reply(ben_headers).status_code == 202
    assert conversations(runtime)[conversation_id][0] == ben
    assert reply(ana_headers).status_code == 202
    assert conversations(runtime)[conversation_id][0] == ben, "the first reply took it"
    assert queue(runtime) == []


def test_sticky_waits_for_the_previous_operator_then_falls_back(runtime, client, channel, admin_headers):
    (ana, _a), (ben, _b) = operator(runtime, "ana"), operator(runtime, "ben")
    online(client, admin_headers, ana)
    team = make_team(client, admin_headers, [ana, ben], strategy="sticky", sticky_wait_seconds=60)
    wa_id = customer_writes(client, channel[1])
    (first, (assignee, _t, _s)), = conversations(runtime).items()
    assert assignee == ana
    client.post(f"/api/v1/conversations/{first}/close", json={}, headers=admin_headers)

    online(client, admin_headers, ana, presence="away")
    online(client, admin_headers, ben)
    customer_writes(client, channel[1], "Me again", wa_id=wa_id)
    second = max(conversations(runtime))
    assert conversations(runtime)[second][0] is None
    assert queue(runtime) == [(second, "waiting_for_operator", ana)]
    assert routing_sweep(runtime, utcnow())["assigned"] == 0, "still within the sticky wait"
    assert routing_sweep(runtime, utcnow() + timedelta(seconds=61))["assigned"] == 1
    assert conversations(runtime)[second][0] == ben
    assert team["strategy"] == "sticky"


def test_sticky_returns_to_the_previous_operator_when_they_are_online(runtime, client, channel, admin_headers):
    (ana, _a), (ben, _b) = operator(runtime, "ana"), operator(runtime, "ben")
    online(client, admin_headers, ana)
    online(client, admin_headers, ben)
    make_team(client, admin_headers, [ana, ben], strategy="sticky")
    wa_id = customer_writes(client, channel[1])
    first = max(conversations(runtime))
    owner = conversations(runtime)[first][0]
    client.post(f"/api/v1/conversations/{first}/close", json={}, headers=admin_headers)
    customer_writes(client, channel[1])  # someone else in between
    customer_writes(client, channel[1], "Back", wa_id=wa_id)
    assert conversations(runtime)[max(conversations(runtime))][0] == owner


def test_a_rule_sends_keyword_chats_to_one_operator_and_others_to_the_team(runtime, client, channel, admin_headers):
    (ana, _a), (vip, _v) = operator(runtime, "ana"), operator(runtime, "vip")
    online(client, admin_headers, ana)
    online(client, admin_headers, vip)
    r = client.post("/api/v1/routing-rules", json={"user_id": vip, "position": 0,
                                                   "conditions": {"keywords": ["опт", "wholesale"]}},
                    headers=admin_headers)
    assert r.status_code == 201, r.json
    team = client.post("/api/v1/teams", json={"name": "All", "member_ids": [ana]}, headers=admin_headers).json
    client.post("/api/v1/routing-rules", json={"team_id": team["id"], "position": 5}, headers=admin_headers)
    customer_writes(client, channel[1], "Цены на ОПТ?")
    customer_writes(client, channel[1], "Hi")
    assert [a for a, _t, _s in conversations(runtime).values()] == [vip, ana]


def test_transfer_to_an_operator_and_to_a_team_keeps_the_history(runtime, client, channel, admin_headers):
    (ana, ana_headers), (ben, _b) = operator(runtime, "ana"), operator(runtime, "ben")
    online(client, admin_headers, ana)
    make_team(client, admin_headers, [ana])
    support = client.post("/api/v1/teams", json={"name": "Support", "member_ids": [ben]}, headers=admin_headers).json
    customer_writes(client, channel[1])
    conversation_id = max(conversations(runtime))
    r = client.post(f"/api/v1/conversations/{conversation_id}/transfer", json={"user_id": ben}, headers=ana_headers)
    assert r.status_code == 200 and r.json["assignee"] is None, "ben is offline: it waits for him"
    assert queue(runtime) == [(conversation_id, "waiting_for_operator", ben)]
    online(client, admin_headers, ben)
    assert conversations(runtime)[conversation_id][0] == ben
    r = client.post(f"/api/v1/conversations/{conversation_id}/transfer", json={"team_id": support["id"]},
                    headers=admin_headers)
    assert r.status_code == 200 and r.json["team_id"] == support["id"] and r.json["assignee"]["id"] == ben
    moves = events(runtime, "conversation.transferred")
    assert [(m["to"], m["outcome"]) for m in moves] == [({"user_id": ben, "team_id": moves[0]["to"]["team_id"]},
                                                         "queued"), ({"user_id": None, "team_id": support["id"]},
                                                                     "assigned")]
    thread = client.get(f"/api/v1/conversations/{conversation_id}", headers=admin_headers).json
    assert [m["text"] for m in thread["messages"]] == ["Hello"]


def test_presence_times_out_without_requests(runtime, client, admin_headers):
    (ana, ana_headers), = [operator(runtime, "ana")]
    online(client, ana_headers, ana)
    now = utcnow()
    assert routing_sweep(runtime, now + timedelta(minutes=10))["offline"] == 0
    client.get("/api/v1/operators", headers=ana_headers)  # within the minute: no write needed
    assert routing_sweep(runtime, now + timedelta(minutes=16))["offline"] == 1
    with runtime.db.scope() as session:
        assert session.get(OperatorState, ana).presence == "offline"


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/routing-rules", {"team_id": 999999}, "team_id"),
    ("/api/v1/routing-rules", {"user_id": 999999}, "user_id"),
    ("/api/v1/routing-rules", {}, "team_id"),
    ("/api/v1/routing-rules", {"team_id": 1, "user_id": 1}, "team_id"),
    ("/api/v1/routing-rules", {"user_id": 1, "conditions": {"keywords": "price"}}, "conditions"),
    ("/api/v1/teams", {"name": "T", "hours": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "hours"),
    ("/api/v1/teams", {"name": "T", "hours": {"mon": [["9", "18:00"]]}}, "hours"),
    ("/api/v1/teams", {"name": "T", "time_zone": "Moon/Base"}, "time_zone"),
    ("/api/v1/teams", {"name": "T", "holidays": ["tomorrow"]}, "holidays"),
    ("/api/v1/teams", {"name": "T", "member_ids": [999999]}, "member_ids"),
    ("/api/v1/teams", {"name": "T", "strategy": "random"}, "strategy"),
    ("/api/v1/teams", {"name": "T", "sticky_wait_seconds": -1}, "sticky_wait_seconds"),
])
def test_bad_routing_settings_are_refused_by_name_and_nothing_is_saved(runtime, client, admin_headers, path, body,
                                                                       field):
    r = client.post(path, json=body, headers=admin_headers)
    assert r.status_code == 422 and field in r.json["errors"]["json"], r.json
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Team)) == 0
        assert session.scalar(select(func.count()).select_from(RoutingRule)) == 0


def test_negative_capacity_and_others_presence(runtime, client, admin_headers):
    (ana, ana_headers), (ben, _b) = operator(runtime, "ana"), operator(runtime, "ben")
    r = client.put(f"/api/v1/operators/{ana}/presence", json={"presence": "online", "capacity": -1},
                   headers=admin_headers)
    assert r.status_code == 422 and "capacity" in r.json["errors"]["json"]
    r = client.put(f"/api/v1/operators/{ben}/presence", json={"presence": "online"}, headers=ana_headers)
    assert r.status_code == 403
    r = client.put(f"/api/v1/operators/{ana}/presence", json={"presence": "online", "capacity": 50},
                   headers=ana_headers)
    assert r.status_code == 403, "capacities are an admin's"
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(OperatorState)) == 0


def test_a_team_patch_with_one_bad_field_changes_nothing(runtime, client, admin_headers):
    team = client.post("/api/v1/teams", json={"name": "Sales", "hours": {"mon": [["09:00", "18:00"]]}},
                       headers=admin_headers).json
    r = client.patch(f"/api/v1/teams/{team['id']}", json={"name": "Renamed", "hours": {"mon": [["18:00", "18:00"]]},
                                                         "time_zone": "Europe/Moscow"}, headers=admin_headers)
    assert r.status_code == 422
    after = client.get(f"/api/v1/teams/{team['id']}", headers=admin_headers).json
    assert (after["name"], after["time_zone"], after["hours"]) == ("Sales", "UTC", {"mon": [["09:00", "18:00"]]})


def test_a_released_chat_is_routed_again_to_someone_with_room(runtime, client, channel, admin_headers):
    (ana, ana_headers), (ben, _b) = operator(runtime, "ana"), operator(runtime, "ben")
    online(client, admin_headers, ana)
    make_team(client, admin_headers, [ana, ben], strategy="least_busy")
    customer_writes(client, channel[1])
    conversation_id = max(conversations(runtime))
    assert conversations(runtime)[conversation_id][0] == ana
    online(client, admin_headers, ben)
    online(client, ana_headers, ana, presence="away")
    r = client.post(f"/api/v1/conversations/{conversation_id}/assign", json={"assignee_id": None}, headers=ana_headers)
    assert r.status_code == 200 and r.json["assignee"]["id"] == ben, "released: routed again by the rules"
