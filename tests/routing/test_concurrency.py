"""Two workers routing at once (PostgreSQL row locks): no conversation is assigned twice
and no operator goes past capacity."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Event, OperatorState
from hub.routing import engine
from hub.routing.store import save_rule, save_team
from hub.models.users import create_user
from tests.support.whatsapp import make_channel



def _setup(runtime, conversations: int, capacity: int) -> tuple[list[int], int]:
    channel_id, _key = make_channel(runtime)
    now = utcnow()
    with runtime.db.scope() as session:
        user = create_user(session, email="ana@example.com", password="correct horse battery", role="operator",
                           now=now)
        team = save_team(session, {"name": "Sales", "member_ids": [user.id], "strategy": "least_busy"}, now=now)
        save_rule(session, {"team_id": team.id, "conditions": {}}, now=now)
        engine.set_presence(session, user.id, "online", now=now, capacity=capacity)
        ids = []
        for i in range(conversations):
            contact = Contact(wa_id=f"1555000{i:04d}", name=f"C{i}", created_at=now, updated_at=now)
            session.add(contact)
            session.flush()
            c = Conversation(channel_id=channel_id, contact_id=contact.id, status="open", opened_at=now,
                             created_at=now, updated_at=now)
            session.add(c)
            session.flush()
            ids.append(c.id)
        return ids, user.id


def _race(runtime, work: list[list[int]]) -> list[BaseException]:
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(ids: list[int]) -> None:
        try:
            barrier.wait()
            for conversation_id in ids:
                with runtime.db.scope() as session:
                    engine.route(session, session.get(Conversation, conversation_id), now=utcnow())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ids,)) for ids in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_two_workers_never_push_an_operator_past_capacity(runtime):
    if runtime.db.is_sqlite:
        pytest.skip("SQLite has one writer: the race needs PostgreSQL")
    ids, user_id = _setup(runtime, 20, capacity=3)
    errors = _race(runtime, [ids[0::2], ids[1::2]])
    assert not errors, errors
    with runtime.db.scope() as session:
        assigned = session.scalar(select(func.count()).select_from(Conversation)
                                  .where(Conversation.assignee_id == user_id))
        assert assigned == 3
        assert session.scalar(select(func.count()).select_from(Event)
                              .where(Event.type == "conversation.assigned")) == 3


def test_two_workers_routing_the_same_conversations_assign_each_once(runtime):
    if runtime.db.is_sqlite:
        pytest.skip("SQLite has one writer: the race needs PostgreSQL")
    ids, user_id = _setup(runtime, 10, capacity=100)
    errors = _race(runtime, [ids, list(reversed(ids))])
    assert not errors, errors
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)
                              .where(Conversation.assignee_id == user_id)) == 10
        assert session.scalar(select(func.count()).select_from(Event)
                              .where(Event.type == "conversation.assigned")) == 10, "one assignment each"


def test_the_fast_path_writes_nothing_when_the_chat_was_taken_meanwhile(runtime):
    if runtime.db.is_sqlite:
        pytest.skip("the fast path is PostgreSQL's")
    from hub.routing import fast
    from hub.routing.known import snapshot

    ids, user_id = _setup(runtime, 2, capacity=5)
    with runtime.db.scope() as session:
        team_id = next(iter(snapshot(session).teams))
        taken = session.get(Conversation, ids[0])
        session.execute(Conversation.__table__.update().where(Conversation.id == ids[0]).values(status="closed"))
        assert fast.assign_in_team(session, taken, team_id, "least_busy", now=utcnow()) is None
        fresh = session.get(Conversation, ids[1])
        assert fast.assign_in_team(session, fresh, team_id, "least_busy", now=utcnow()) == user_id
        assert fresh.assignee_id == user_id and fresh.team_id == team_id
    with runtime.db.scope() as session:
        events = session.scalars(select(Event).where(Event.type == "conversation.assigned")).all()
        assert [e.data["conversation"]["id"] for e in events] == [ids[1]], "no event for the chat not assigned"
        assert events[0].data["assignee"]["id"] == user_id
        assert events[0].data["conversation"]["assignee"] == events[0].data["assignee"]
        assert set(events[0].data["assignee"]) == {"id", "email", "name"}
        assert session.get(Conversation, ids[0]).assignee_id is None


def test_the_fast_path_skips_a_member_another_router_holds(runtime):
    """The member's state row locked by another transaction: the fast path writes
    nothing at once (the general path then waits for the lock)."""
    if runtime.db.is_sqlite:
        pytest.skip("the fast path is PostgreSQL's")
    from hub.routing import fast
    from hub.routing.known import snapshot

    ids, user_id = _setup(runtime, 1, capacity=5)
    with runtime.db.scope() as holder:
        holder.execute(select(OperatorState).where(OperatorState.user_id == user_id).with_for_update())
        with runtime.db.scope() as session:
            team_id = next(iter(snapshot(session).teams))
            chat = session.get(Conversation, ids[0])
            assert fast.assign_in_team(session, chat, team_id, "least_busy", now=utcnow()) is None
            assert chat.assignee_id is None
    with runtime.db.scope() as session:
        assert session.get(Conversation, ids[0]).assignee_id is None
        assert session.scalar(select(func.count()).select_from(Event)
                              .where(Event.type == "conversation.assigned")) == 0
