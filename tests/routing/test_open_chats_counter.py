"""operator_states.open_chats equals each operator's real count of open conversations
after every kind of write: routing (both paths), transfer, release, close, the API's
assign and close, bulk SQL, deletes and the cascades of deleted contacts, channels and users."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, text, update

from hub.conversations.actions import assign, close
from hub.models import Contact, Conversation, OperatorState, User
from hub.platform.db import utcnow
from hub.models.users import create_user
from hub.routing import counts, engine
from hub.routing.store import save_rule, save_team
from tests.support.whatsapp import make_channel


def _counters(runtime) -> dict[int, int]:
    with runtime.db.scope() as s:
        return {user_id: n for user_id, n in s.execute(
            select(OperatorState.user_id, OperatorState.open_chats).where(OperatorState.open_chats != 0))}


def _in_step(runtime, expected: dict[int, int]) -> None:
    """The counters are the real counts, and those are `expected` ({user_id: open chats})."""
    with runtime.db.scope() as s:
        assert counts.wrong(s) == {}
    assert _counters(runtime) == {k: v for k, v in expected.items() if v}


def _conversation(s, channel_id: int, i: int, now, **values) -> int:
    contact = Contact(wa_id=f"1555100{i:04d}", name=f"C{i}", created_at=now, updated_at=now)
    s.add(contact)
    s.flush()
    c = Conversation(channel_id=channel_id, contact_id=contact.id, status=values.pop("status", "open"),
                     opened_at=now, created_at=now, updated_at=now, **values)
    s.add(c)
    s.flush()
    return c.id


def test_every_writer_keeps_the_counters_in_step(runtime, client, admin_headers):
    channel_id, _key = make_channel(runtime)
    other_channel, _ = make_channel(runtime, phone_number_id="1000000000000002", name="Support")
    now = utcnow()
    with runtime.db.scope() as s:
        ana, bob, cid = (create_user(s, email=f"{n}@example.com", password="correct horse battery", role="operator",
                                     now=now).id for n in ("ana", "bob", "cid"))
        team = save_team(s, {"name": "Sales", "member_ids": [ana, bob], "strategy": "least_busy"}, now=now)
        save_rule(s, {"team_id": team.id, "conditions": {}}, now=now)
        for user_id in (ana, bob):
            engine.set_presence(s, user_id, "online", now=now, capacity=10)
        # Created assigned (cid has no state row yet: the first chat makes one).
        given = _conversation(s, channel_id, 0, now, assignee_id=cid)
        born_closed = _conversation(s, channel_id, 1, now, assignee_id=cid, status="closed")
        routed = [_conversation(s, channel_id, i, now) for i in range(2, 8)]
    _in_step(runtime, {cid: 1})

    for conversation_id in routed:  # the fast path on PostgreSQL, the general one on SQLite
        with runtime.db.scope() as s:
            assert engine.route(s, engine.load_for_routing(s, conversation_id), now=now).outcome == "assigned"
    _in_step(runtime, {ana: 3, bob: 3, cid: 1})

    with runtime.db.scope() as s:  # transfer to an operator, then to the team
        c = s.get(Conversation, routed[0])
        owner = c.assignee_id
        engine.set_presence(s, cid, "online", now=now, capacity=10)
        engine.transfer(s, c, now=now, to_user_id=cid)
    _in_step(runtime, {ana: 3 - (owner == ana), bob: 3 - (owner == bob), cid: 2})
    with runtime.db.scope() as s:
        engine.transfer(s, s.get(Conversation, routed[0]), now=now, to_team_id=team.id)
    _in_step(runtime, {ana: 3, bob: 3, cid: 1})

    with runtime.db.scope() as s:  # release, close an assigned and an unassigned one
        released = s.get(Conversation, routed[1])
        released_from = released.assignee_id
        assign(s, released, None, now=now)
        close(s, s.get(Conversation, given), reason="resolved", now=now)
    expected = {ana: 3 - (released_from == ana), bob: 3 - (released_from == bob)}
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        close(s, s.get(Conversation, routed[1]), reason="resolved", now=now)
    _in_step(runtime, expected)

    # The API: assign to cid, release, close.
    target = routed[2]
    with runtime.db.scope() as s:
        target_from = s.get(Conversation, target).assignee_id
    r = client.post(f"/api/v1/conversations/{target}/assign", json={"assignee_id": cid}, headers=admin_headers)
    assert r.status_code == 200, r.json
    expected[target_from] -= 1
    expected[cid] = 1
    _in_step(runtime, expected)
    r = client.post(f"/api/v1/conversations/{target}/close", json={"reason": "resolved"}, headers=admin_headers)
    assert r.status_code == 200, r.json
    expected[cid] = 0
    _in_step(runtime, expected)

    with runtime.db.scope() as s:  # reopened by SQL, and a bulk close
        s.execute(update(Conversation).where(Conversation.id.in_([given, born_closed]))
                  .values(status="open", closed_at=None))
    expected[cid] = 2
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        s.execute(update(Conversation).where(Conversation.assignee_id == ana).values(status="closed", closed_at=now))
    expected[ana] = 0
    _in_step(runtime, expected)
    with runtime.db.scope() as s:  # a bulk reassignment: everything bob has goes to ana
        s.execute(update(Conversation).where(Conversation.assignee_id == bob).values(assignee_id=ana))
    expected[ana], expected[bob] = expected[bob], 0
    _in_step(runtime, expected)

    # Deletes: one conversation, a contact's (cascade), a channel's (cascade), a user's (SET NULL).
    with runtime.db.scope() as s:
        extra = [_conversation(s, other_channel, 20 + i, now, assignee_id=bob) for i in range(3)]
        extra.append(_conversation(s, channel_id, 30, now, assignee_id=bob))
    expected[bob] = 4
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        s.execute(delete(Conversation).where(Conversation.id == extra[0]))
    expected[bob] = 3
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        s.execute(delete(Contact).where(Contact.id == s.get(Conversation, extra[1]).contact_id))
    expected[bob] = 2
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        s.execute(text("DELETE FROM channels WHERE id = :id"), {"id": other_channel})
    expected[bob] = 1
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        s.execute(delete(User).where(User.id == cid))
    expected.pop(cid)
    _in_step(runtime, expected)
    with runtime.db.scope() as s:
        assert s.get(Conversation, given).assignee_id is None


def test_recount_repairs_a_counter_set_wrong(runtime):
    channel_id, _key = make_channel(runtime)
    now = utcnow()
    with runtime.db.scope() as s:
        ana, bob = (create_user(s, email=f"{n}@example.com", password="correct horse battery", role="operator",
                                now=now).id for n in ("ana", "bob"))
        for i in range(3):
            _conversation(s, channel_id, i, now + timedelta(seconds=i), assignee_id=ana)
        engine.state_of(s, bob)
    with runtime.db.scope() as s:
        s.execute(update(OperatorState).where(OperatorState.user_id == ana).values(open_chats=7))
        s.execute(update(OperatorState).where(OperatorState.user_id == bob).values(open_chats=2))
        assert counts.wrong(s) == {ana: 3, bob: 0}
    with runtime.db.scope() as s:
        assert counts.recount(s) == {ana: 3, bob: 0}
    with runtime.db.scope() as s:
        assert counts.recount(s) == {}
    _in_step(runtime, {ana: 3})
