"""300 customers into 3 teams with 12 operators coming and going (both databases):
every conversation ends assigned, to one operator at a time; nobody is ever above
capacity; round robin spreads within one of even."""
from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Conversation, Event, OperatorState
from hub.routing.jobs import routing_sweep
from tests.support.tracking import text_message
from tests.support.whatsapp import post_signed
from tests.routing.test_engine import _fresh_rule_cache, channel, online, operator  # noqa: F401

CAPACITY = 40


def _over_capacity(runtime) -> list[tuple[int, int]]:
    with runtime.db.scope() as session:
        load = session.execute(select(Conversation.assignee_id, func.count()).where(
            Conversation.status == "open", Conversation.assignee_id.is_not(None)).group_by(Conversation.assignee_id))
        caps = dict(session.execute(select(OperatorState.user_id, OperatorState.capacity)).all())
        return [(uid, n) for uid, n in load if n > caps.get(uid, 5)]


def test_three_hundred_chats_three_teams_twelve_operators(runtime, client, channel, admin_headers):
    rng = random.Random(15)
    teams, members = {}, {}
    for name, strategy in (("Sales", "round_robin"), ("Support", "least_busy"), ("Billing", "sticky")):
        ops = [operator(runtime, f"{name.lower()}{i}") for i in range(4)]
        members[name] = [uid for uid, _h in ops]
        for uid in members[name]:
            online(client, admin_headers, uid, capacity=CAPACITY)
        r = client.post("/api/v1/teams", json={"name": name, "strategy": strategy, "member_ids": members[name]},
                        headers=admin_headers)
        teams[name] = r.json["id"]
        assert client.post("/api/v1/routing-rules", json={"team_id": teams[name], "position": len(teams),
                                                          "conditions": {"keywords": [name]}},
                           headers=admin_headers).status_code == 201
    churn = members["Support"] + members["Billing"]
    for i in range(300):
        name = ("Sales", "Support", "Billing")[i % 3]
        body = text_message(f"{name} question {i}", wa_id=f"1555{i:07d}")
        assert post_signed(client, channel[1], body).status_code == 200
        if i % 10 == 9:  # operators of two teams come and go; some chats close
            online(client, admin_headers, rng.choice(churn), presence=rng.choice(["online", "away", "offline"]))
            with runtime.db.scope() as session:
                open_ids = list(session.scalars(select(Conversation.id).where(
                    Conversation.status == "open", Conversation.team_id == teams["Support"],
                    Conversation.assignee_id.is_not(None))))
            if open_ids:
                client.post(f"/api/v1/conversations/{rng.choice(open_ids)}/close", json={}, headers=admin_headers)
            assert _over_capacity(runtime) == []
    for uid in churn:
        online(client, admin_headers, uid)
    routing_sweep(runtime, utcnow())
    assert _over_capacity(runtime) == []

    with runtime.db.scope() as session:
        conversations = session.scalars(select(Conversation)).all()
        assert len(conversations) == 300
        assert all(c.assignee_id is not None for c in conversations if c.status == "open"), "all assigned in the end"
        team_of = {c.id: c.team_id for c in conversations}
        for c in conversations:
            name = next(n for n, t in teams.items() if t == c.team_id)
            assert c.assignee_id in members[name] or c.status == "closed", "assigned within its team"
        assigned = session.scalars(select(Event).where(Event.type == "conversation.assigned")).all()
        per_conversation = Counter(e.data["conversation"]["id"] for e in assigned)
        assert set(per_conversation) == {c.id for c in conversations if c.assignee_id is not None}
        assert all(e.data["previous"] is None for e in assigned), "never assigned twice: no reassignment happened"
        assert max(per_conversation.values()) == 1
        sales = Counter(c.assignee_id for c in conversations if team_of[c.id] == teams["Sales"])
        assert sorted(sales) == sorted(members["Sales"])
        assert max(sales.values()) - min(sales.values()) <= 1, f"round robin spread: {sales}"
