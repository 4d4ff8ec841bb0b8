"""The statements of one least-busy routing decision, counted (both databases): the
decision must not silently grow round trips back. On PostgreSQL it is the load of the
conversation with its contact and channel, then one statement that picks, locks,
assigns, stamps the operator, unqueues and writes conversation.assigned."""
from __future__ import annotations

from sqlalchemy import event as sa_event
from sqlalchemy import select

from hub.models import Contact, Conversation, Event
from hub.platform.db import utcnow
from hub.models.users import create_user
from hub.routing import engine, known
from hub.routing.store import save_rule, save_team
from tests.support.whatsapp import make_channel


def _team_of_three(runtime) -> tuple[list[int], list[int]]:
    """Three online operators of a least-busy team, the first two with one open chat each,
    and two new unassigned chats. Returns (operator ids, new chat ids)."""
    channel_id, _key = make_channel(runtime)
    now = utcnow()
    with runtime.db.scope() as session:
        users = [create_user(session, email=f"op{i}@example.com", password="correct horse battery",
                             role="operator", now=now).id for i in range(3)]
        team = save_team(session, {"name": "Support", "member_ids": users, "strategy": "least_busy"}, now=now)
        save_rule(session, {"team_id": team.id, "conditions": {}}, now=now)
        for user_id in users:
            engine.set_presence(session, user_id, "online", now=now, capacity=5)
        ids = []
        for i, assignee in enumerate([users[0], users[1], None, None]):
            contact = Contact(wa_id=f"1555444{i:04d}", name=f"C{i}", created_at=now, updated_at=now)
            session.add(contact)
            session.flush()
            chat = Conversation(channel_id=channel_id, contact_id=contact.id, status="open", opened_at=now,
                                assignee_id=assignee, created_at=now, updated_at=now)
            session.add(chat)
            session.flush()
            ids.append(chat.id)
    return users, ids[2:]


def _decide(runtime, conversation_id: int) -> tuple[engine.Routed, list[str]]:
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:2]))

    sa_event.listen(runtime.db.engine, "before_cursor_execute", seen)
    try:
        with runtime.db.scope() as session:
            routed = engine.route(session, engine.load_for_routing(session, conversation_id), now=utcnow())
    finally:
        sa_event.remove(runtime.db.engine, "before_cursor_execute", seen)
    return routed, statements


def test_a_least_busy_decision_takes_a_fixed_number_of_statements(runtime):
    known.forget()
    users, (first, second) = _team_of_three(runtime)
    routed, _ = _decide(runtime, first)  # reads the rules and teams once (kept 5 s)
    assert routed.outcome == "assigned" and routed.user_id == users[2], "the one without a chat"
    routed, statements = _decide(runtime, second)
    # Two have one chat each now; the tie goes to the longest since an assignment (never).
    assert routed.outcome == "assigned" and routed.user_id == users[0]
    if runtime.db.dialect == "postgresql":
        assert statements == ["SELECT conversations.id,", "WITH picked"], statements
    else:
        # The general path (one writer: no race to guard against with SKIP LOCKED).
        assert statements == EXPECTED_SQLITE, statements
    with runtime.db.scope() as session:
        assigned = session.scalars(select(Event).where(Event.type == "conversation.assigned")
                                   .order_by(Event.occurred_at, Event.id)).all()
        assert [e.data["conversation"]["id"] for e in assigned] == [first, second]
        assert assigned[1].data["assignee"]["id"] == users[0]
        assert session.get(Conversation, second).assignee_id == users[0]


EXPECTED_SQLITE = [
    "BEGIN IMMEDIATE", "SELECT conversations.id,",  # the transaction, the load
    "SELECT teams.id,", "SELECT users.id,",  # the team, its candidates with their chats counted
    "SELECT operator_states.user_id,", "SELECT count(*)",  # the chosen one's state, their chats re-counted
    "UPDATE conversations", "SELECT users.id,", "UPDATE conversations",  # the assignment and its event's assignee
    "SELECT routing_queue.conversation_id,", "SELECT connectors.id,",  # out of any queue; who subscribes
    "UPDATE conversations", "INSERT INTO", "UPDATE operator_states",  # flushed at commit: the event, the stamp
]


def test_a_decision_after_other_events_writes_its_deliveries_in_the_same_statement(runtime):
    """Ingest emits the message's events before it routes: the transaction knows its
    subscribers, and the assignment's deliveries ride in the assignment's statement."""
    from hub.events.outbox import emit
    from hub.models import ConnectorRecord, Delivery

    known.forget()
    users, (first, second) = _team_of_three(runtime)
    _decide(runtime, first)
    now = utcnow()
    with runtime.db.scope() as session:
        for name, enabled, types in (("all", True, None), ("messages", True, ["message.received"]),
                                     ("off", False, None), ("assigned", True, ["conversation.assigned"])):
            session.add(ConnectorRecord(kind="webhook", name=name, enabled=enabled, settings={}, event_types=types,
                                        webhook_key=f"key-{name}", created_at=now, updated_at=now))
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:2]))

    with runtime.db.scope() as session:
        chat = engine.load_for_routing(session, second)
        emit(session, "message.received", {"conversation": {"id": second}}, now=now)
        sa_event.listen(runtime.db.engine, "before_cursor_execute", seen)
        try:
            routed = engine.route(session, chat, now=now)
        finally:
            sa_event.remove(runtime.db.engine, "before_cursor_execute", seen)
    assert routed.outcome == "assigned" and routed.user_id == users[0]
    if runtime.db.dialect == "postgresql":
        assert statements == ["WITH picked"], statements
    with runtime.db.scope() as session:
        assigned = session.scalars(select(Event).where(Event.type == "conversation.assigned")
                                   .order_by(Event.occurred_at, Event.id)).all()[-1]
        assert assigned.data["conversation"]["id"] == second
        names = {session.get(ConnectorRecord, d.connector_id).name: (d.status, d.attempts, d.ordering_key)
                 for d in session.scalars(select(Delivery).where(Delivery.event_id == assigned.id))}
        assert names == {"all": ("pending", 0, f"conversation:{second}"),
                         "assigned": ("pending", 0, f"conversation:{second}")}
        received = session.scalars(select(Event).where(Event.type == "message.received")).one()
        receivers = session.scalars(select(ConnectorRecord.name)
                                    .join(Delivery, Delivery.connector_id == ConnectorRecord.id)
                                    .where(Delivery.event_id == received.id))
        assert sorted(receivers) == ["all", "messages"]
