"""PostgreSQL fast path of a team assignment: one round trip where the general path
takes a dozen.

One statement picks the team's best available member by the strategy (least busy, or
the next in the round-robin ring), their open chats read from their state row's counter
(operator_states.open_chats, which the database's triggers on conversations keep in
step), and locks that row FOR UPDATE SKIP LOCKED (a member another router is assigning
to right now is skipped, not waited for). The assignment is written only when the locked
row is the very version the statement's snapshot saw (same xmin): every assignment, close
or release rewrites the operator's state row (the counter), so one committed between the
snapshot and the lock shows as a newer version, and then nothing is written. Otherwise the same statement sets the assignee (when the chat
is still open and unassigned), stamps the operator (and the team's round-robin turn),
takes the chat out of any queue and inserts conversation.assigned with the member filled
in, and its deliveries when the transaction has read the subscribers already (ingest
emits the message's events first).

When it writes nothing (every candidate locked, full or just changed, or the chat taken),
the caller falls back to the general path, which waits for locks and queues if need be.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hub.events import payloads
from hub.events.outbox import SUBSCRIBERS_JSON, event_params, event_written, is_first_event, known_subscribers
from hub.models import Channel, Contact, Conversation, Event, OperatorState, QueueEntry, Team

_PICK = """
SELECT s.user_id, s.xmin AS seen, u.email, u.name
FROM team_members m{ring}
JOIN operator_states s ON s.user_id = m.user_id
JOIN users u ON u.id = m.user_id
WHERE m.team_id = :team_id AND s.presence = 'online' AND u.active AND u.role <> 'viewer' AND s.open_chats < s.capacity
ORDER BY {order}
LIMIT 1
FOR UPDATE OF s SKIP LOCKED
"""
ORDER = {
    "least_busy": "s.open_chats, s.last_assigned_at NULLS FIRST, s.user_id",
    "round_robin": "s.user_id <= coalesce(t.last_assigned_user_id, 0), s.user_id",
}
# Only the round-robin order reads the team's row (whose turn it is).
RING = {"least_busy": "", "round_robin": "\nJOIN teams t ON t.id = m.team_id"}
_TURN = """,
turn AS (UPDATE teams SET last_assigned_user_id = g.user_id, updated_at = :now
         FROM guarded g WHERE teams.id = :team_id)"""
_ASSIGN = """
WITH picked AS ({pick}),
fresh AS (SELECT p.user_id, p.email, p.name FROM picked p
          JOIN operator_states seen ON seen.user_id = p.user_id AND seen.xmin = p.seen),
guarded AS (UPDATE conversations SET assignee_id = f.user_id, team_id = :team_id, updated_at = :now
            FROM fresh f
            WHERE conversations.id = :conversation_id AND conversations.status = 'open'
              AND conversations.assignee_id IS NULL
            RETURNING f.user_id, jsonb_build_object('id', f.user_id, 'email', f.email, 'name', f.name) AS assignee),
stamp AS (UPDATE operator_states SET last_assigned_at = :now, changed_at = :now
          FROM guarded g WHERE operator_states.user_id = g.user_id),
unqueue AS (DELETE FROM routing_queue q USING guarded g WHERE q.conversation_id = :conversation_id),
event AS (INSERT INTO events (id, type, version, occurred_at, ordering_key, data, created_at)
          SELECT :event_id, :event_type, :event_version, :event_occurred_at, :event_ordering_key,
                 jsonb_set(jsonb_set(:event_data, '{{assignee}}', g.assignee), '{{conversation,assignee}}', g.assignee),
                 :event_created_at
          FROM guarded g){turn}{deliver}
SELECT (SELECT user_id FROM guarded), {subscribers}
"""
# The event's deliveries, when the transaction knows its subscribers already (ingest has
# emitted the message's events before it routes): in the same round trip.
_DELIVER = """,
deliver AS (INSERT INTO deliveries (event_id, connector_id, ordering_key, status, attempts, next_attempt_at,
                                    created_at)
            SELECT :event_id, d.connector_id, :event_ordering_key, 'pending', 0, :now, :now
            FROM guarded g CROSS JOIN unnest(CAST(:connector_ids AS integer[])) AS d(connector_id))"""
_events = Event.__table__


def _statement(strategy: str, first: bool, deliver: bool = False):
    sql = _ASSIGN.format(pick=_PICK.format(order=ORDER[strategy], ring=RING[strategy]).strip(),
                         turn=_TURN if strategy == "round_robin" else "", deliver=_DELIVER if deliver else "",
                         subscribers=SUBSCRIBERS_JSON if first else "NULL")
    return text(sql).bindparams(*[bindparam(f"event_{name}", type_=_events.c[name].type)
                                  for name in ("id", "type", "version", "occurred_at", "ordering_key", "data",
                                               "created_at")])


# (strategy, first event of the transaction, deliveries written in the statement)
STATEMENTS = {(strategy, first, deliver): _statement(strategy, first, deliver)
              for strategy in ORDER for first, deliver in ((True, False), (False, False), (False, True))}


def usable(session: Session, strategy: str) -> bool:
    return strategy in ORDER and session.get_bind().dialect.name == "postgresql"


def assign_in_team(session: Session, conversation: Conversation, team_id: int, strategy: str, *,
                   now: datetime) -> int | None:
    """The member of team `team_id` (whose strategy is `strategy`) the chat was given
    to, or None (nothing written: take the general path). `conversation` is loaded with
    its contact and channel (hub.routing.engine.load_for_routing)."""
    channel = session.get(Channel, conversation.channel_id)
    contact = session.get(Contact, conversation.contact_id)
    shown = {**payloads.conversation(session, conversation, known_channel=channel), "assignee": None}
    data = {"conversation": shown, "contact": payloads.contact(contact), "assignee": None, "previous": None}
    params = event_params(session, "conversation.assigned", data, now=now,
                          ordering_key=payloads.ordering_key(conversation))
    first = is_first_event(session)
    receivers = None if first else known_subscribers(session, "conversation.assigned")
    values = {**params, "team_id": team_id, "conversation_id": conversation.id, "now": now}
    if receivers:
        values["connector_ids"] = receivers
    user_id, subscribers = session.execute(STATEMENTS[strategy, first, bool(receivers)], values).one()
    if user_id is None:
        return None
    if not receivers:  # else the statement wrote the deliveries
        event_written(session, params, subscribers, now=now)
    # The rows changed behind the ORM's back: tell the objects this session holds.
    set_committed_value(conversation, "assignee_id", user_id)
    set_committed_value(conversation, "team_id", team_id)
    set_committed_value(conversation, "updated_at", now)
    state = session.identity_map.get(session.identity_key(OperatorState, user_id))
    if state is not None:
        set_committed_value(state, "last_assigned_at", now)
        set_committed_value(state, "changed_at", now)
        session.expire(state, ["open_chats"])  # the trigger's
    team = session.identity_map.get(session.identity_key(Team, team_id))
    if team is not None and strategy == "round_robin":
        set_committed_value(team, "last_assigned_user_id", user_id)
        set_committed_value(team, "updated_at", now)
    queued = session.identity_map.get(session.identity_key(QueueEntry, conversation.id))
    if queued is not None:
        session.expunge(queued)
    return user_id
