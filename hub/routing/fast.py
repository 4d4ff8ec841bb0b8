"""PostgreSQL fast path of a team assignment: two round trips where the general path
takes a dozen.

1. pick: the team's best available member by the strategy (least busy, or the next in
   the round-robin ring), their open chats counted through the partial index, locked
   FOR UPDATE SKIP LOCKED (a member another router is assigning to right now is
   skipped, not waited for);
2. assign: a statement that starts after the lock was granted, so its snapshot holds
   every assignment committed to that member; it re-counts their open chats and, only
   when they still have room and the conversation is still open and unassigned, sets
   the assignee, stamps the operator (and the team's round-robin turn), takes the chat
   out of any queue and writes conversation.assigned (hub.events.emit_guarded).

When either step finds nothing (every candidate locked, full, or the chat taken), the
caller falls back to the general path, which waits for locks and queues if need be.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, literal_column, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hub import payloads
from hub.events import emit_guarded
from hub.models import Channel, Contact, Conversation, OperatorState, QueueEntry, Team

_PICK = """
SELECT s.user_id, s.capacity, u.email, u.name
FROM team_members m
JOIN teams t ON t.id = m.team_id
JOIN operator_states s ON s.user_id = m.user_id
JOIN users u ON u.id = m.user_id
CROSS JOIN LATERAL (SELECT count(*) AS n FROM conversations c
                    WHERE c.assignee_id = s.user_id AND c.status = 'open') load
WHERE m.team_id = :team_id AND s.presence = 'online' AND u.active AND u.role <> 'viewer' AND load.n < s.capacity
ORDER BY {order}
LIMIT 1
FOR UPDATE OF s SKIP LOCKED
"""
PICK = {
    "least_busy": text(_PICK.format(order="load.n, s.last_assigned_at NULLS FIRST, s.user_id")),
    "round_robin": text(_PICK.format(order="s.user_id <= coalesce(t.last_assigned_user_id, 0), s.user_id")),
}

_c = Conversation.__table__
_open_chats = (select(func.count()).select_from(_c.alias("mine"))
               .where(literal_column("mine.assignee_id") == bindparam("g_uid"),
                      text("mine.status = 'open'")).scalar_subquery())
GUARD = (update(_c)
         .where(_c.c.id == bindparam("g_cid"), text("conversations.status = 'open'"), _c.c.assignee_id.is_(None),
                _open_chats < bindparam("g_capacity"))
         .values(assignee_id=bindparam("g_uid"), team_id=bindparam("g_team"), updated_at=bindparam("g_now"))
         .returning(_c.c.id))


def _wrote(guarded: Any) -> Any:
    return exists(select(literal_column("1")).select_from(guarded))


def _stamp_operator(guarded: Any) -> Any:
    s = OperatorState.__table__
    return (update(s).where(s.c.user_id == bindparam("g_uid"), _wrote(guarded))
            .values(last_assigned_at=bindparam("g_now"), changed_at=bindparam("g_now")))


def _unqueue(guarded: Any) -> Any:
    q = QueueEntry.__table__
    return delete(q).where(q.c.conversation_id == bindparam("g_cid"), _wrote(guarded))


def _turn(guarded: Any) -> Any:
    t = Team.__table__
    return (update(t).where(t.c.id == bindparam("g_team"), _wrote(guarded))
            .values(last_assigned_user_id=bindparam("g_uid"), updated_at=bindparam("g_now")))


ALSO = {"least_busy": (_stamp_operator, _unqueue), "round_robin": (_stamp_operator, _unqueue, _turn)}


def usable(session: Session, strategy: str) -> bool:
    return strategy in PICK and session.get_bind().dialect.name == "postgresql"


def assign_in_team(session: Session, conversation: Conversation, team_id: int, strategy: str, *,
                   now: datetime) -> int | None:
    """The member of team `team_id` (whose strategy is `strategy`) the chat was given
    to, or None (nothing written: take the general path)."""
    picked = session.execute(PICK[strategy], {"team_id": team_id}).first()
    if picked is None:
        return None
    user_id, capacity, email, name = picked
    channel = session.get(Channel, conversation.channel_id)
    contact = session.get(Contact, conversation.contact_id)
    assignee = {"id": user_id, "email": email, "name": name}
    shown = {**payloads.conversation(session, conversation, known_channel=channel), "assignee": assignee}
    data = {"conversation": shown, "contact": payloads.contact(contact), "assignee": assignee, "previous": None}
    wrote = emit_guarded(session, "conversation.assigned", data, now=now, guard=GUARD, also=ALSO[strategy],
                         params={"g_cid": conversation.id, "g_uid": user_id, "g_team": team_id,
                                 "g_capacity": capacity, "g_now": now},
                         ordering_key=payloads.ordering_key(conversation))
    if not wrote:
        return None
    # The rows changed behind the ORM's back: tell the objects this session holds.
    set_committed_value(conversation, "assignee_id", user_id)
    set_committed_value(conversation, "team_id", team_id)
    set_committed_value(conversation, "updated_at", now)
    state = session.identity_map.get(session.identity_key(OperatorState, user_id))
    if state is not None:
        set_committed_value(state, "last_assigned_at", now)
        set_committed_value(state, "changed_at", now)
    team = session.identity_map.get(session.identity_key(Team, team_id))
    if team is not None and strategy == "round_robin":
        set_committed_value(team, "last_assigned_user_id", user_id)
        set_committed_value(team, "updated_at", now)
    queued = session.identity_map.get(session.identity_key(QueueEntry, conversation.id))
    if queued is not None:
        session.expunge(queued)
    return user_id
