"""Routing in the caller's transaction: rules -> team or operator -> assignment or queue.

route() runs when a conversation starts (or reopens as a new one) and when it is
released to a team; drain() hands queued conversations to operators as capacity frees
(a chat closes, an operator comes online, a team opens, a sticky wait ends). Every
assignment locks the operator's state row first (PostgreSQL: FOR UPDATE), then counts
their open conversations: two workers routing at once cannot push an operator past
capacity, and the conversation row lock keeps one conversation from two assignments.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.conversations.actions import assign
from hub.events.outbox import emit
from hub.models import Channel, Contact, Conversation, OperatorState, QueueEntry, Team, TeamMember, User
from hub.routing import fast, hours, known, rules, strategies
from hub.routing.replies import off_hours_reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    """What route() did: "assigned" (to user_id), "queued" (reason), or "none"."""

    outcome: str
    user_id: int | None = None
    team_id: int | None = None
    reason: str | None = None


NONE = Routed("none")
# Spelled out, not a parameter, so that the partial index of open chats applies.
OPEN = text("conversations.status = 'open'")


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _locked(session: Session, model: Any, key: Any) -> Any:
    """The row, locked for the rest of the transaction on PostgreSQL."""
    if _postgres(session):
        return session.get(model, key, with_for_update=True, populate_existing=True)
    return session.get(model, key)


def open_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.assignee_id == user_id, OPEN)) or 0


def state_of(session: Session, user_id: int) -> OperatorState:
    state = session.get(OperatorState, user_id)
    if state is None:
        state = OperatorState(user_id=user_id, presence="offline", capacity=5)
        session.add(state)
        session.flush()
    return state


def _candidates(session: Session, team: Team) -> list[strategies.Candidate]:
    """The team's members who can take chats, with their open chats counted (one query:
    the count is an index probe of ix_conversations_open_assignee per member)."""
    open_chats = (select(func.count()).select_from(Conversation)
                  .where(Conversation.assignee_id == User.id, OPEN)
                  .correlate(User).scalar_subquery())
    members = session.execute(
        select(User.id, OperatorState.presence, OperatorState.capacity, OperatorState.last_assigned_at, open_chats)
        .join(TeamMember, TeamMember.user_id == User.id)
        .outerjoin(OperatorState, OperatorState.user_id == User.id)
        .where(TeamMember.team_id == team.id, User.active.is_(True), User.role != "viewer")).all()
    return [strategies.Candidate(user_id=uid, online=presence == "online", open_count=count or 0,
                                 capacity=capacity if capacity is not None else 5, last_assigned_at=last)
            for uid, presence, capacity, last, count in members]


def _facts(session: Session, conversation: Conversation, first_text: str, now: datetime) -> rules.Facts:
    contact = session.get(Contact, conversation.contact_id)
    return rules.Facts(channel_id=conversation.channel_id, now=now, lead_source=conversation.lead_source,
                       first_text=first_text,
                       contact={"name": contact.name, "phone": contact.phone, "wa_id": contact.wa_id,
                                "username": contact.username} if contact else {})


def _serves(team: Team, channel_id: int) -> bool:
    return not team.channel_ids or channel_id in team.channel_ids


# Built once: every routing decision starts with it, and building the joins and the
# comparison again was a tenth of a decision's time in Python.
_LOAD_FOR_ROUTING = (select(Conversation, Contact, Channel)
                     .join(Contact, Contact.id == Conversation.contact_id)
                     .join(Channel, Channel.id == Conversation.channel_id)
                     .where(Conversation.id == bindparam("conversation_id"))
                     .execution_options(populate_existing=True))


def load_for_routing(session: Session, conversation_id: int) -> Conversation | None:
    """The conversation with its contact and channel, in one round trip (routing reads all
    three: rules see the contact, events show the channel)."""
    row = session.execute(_LOAD_FOR_ROUTING, {"conversation_id": conversation_id}).first()
    if row is None:
        return None
    # The identity map holds objects weakly: keep the contact and channel for session.get().
    session.info.setdefault("hub.routing.held", []).extend(row[1:])
    return row[0]


def matching_rule(session: Session, conversation: Conversation, first_text: str,
                  now: datetime) -> known.RuleView | None:
    """The first enabled rule, in order, whose conditions hold (rules to a team that does
    not serve the conversation's channel are skipped)."""
    rules_now = known.snapshot(session)
    if not rules_now.rules:
        return None
    facts = _facts(session, conversation, first_text, now)
    for rule in rules_now.rules:
        if rule.team_id is not None:
            team = rules_now.teams.get(rule.team_id)
            if team is None or not team.serves(conversation.channel_id):
                continue
        if rules.matches(rule.conditions, facts):
            return rule
    return None


def route(session: Session, conversation: Conversation, *, now: datetime, first_text: str = "",
          send_reply: Any = None) -> Routed:
    """Route a new or released conversation. `send_reply(conversation, text)`: how an
    off-hours auto-reply is queued (hub.routing.replies.off_hours_reply by default)."""
    if conversation.status != "open" or conversation.assignee_id is not None:
        return NONE
    rule = matching_rule(session, conversation, first_text, now)
    if rule is None:
        return NONE
    if rule.user_id is not None:
        if try_assign(session, conversation, rule.user_id, now=now):
            return Routed("assigned", user_id=rule.user_id)
        enqueue(session, conversation, user_id=rule.user_id, reason="waiting_for_operator", now=now)
        return Routed("queued", user_id=rule.user_id, reason="waiting_for_operator")
    view = known.snapshot(session).teams[rule.team_id]
    if fast.usable(session, view.strategy) and hours.is_open(view.hours, list(view.holidays), view.time_zone, now):
        user_id = fast.assign_in_team(session, conversation, view.id, view.strategy, now=now)
        if user_id is not None:
            return Routed("assigned", user_id=user_id, team_id=view.id)
    team = session.get(Team, rule.team_id)
    if team is None:  # deleted since the snapshot
        return NONE
    return route_to_team(session, conversation, team, now=now, send_reply=send_reply)


def previous_operator(session: Session, conversation: Conversation) -> int | None:
    """The operator of the contact's latest other conversation (sticky routing)."""
    return session.scalar(select(Conversation.assignee_id).where(
        Conversation.contact_id == conversation.contact_id, Conversation.id != conversation.id,
        Conversation.assignee_id.is_not(None)).order_by(Conversation.opened_at.desc(), Conversation.id.desc())
        .limit(1))


def route_to_team(session: Session, conversation: Conversation, team: Team, *, now: datetime,
                  send_reply: Any = None) -> Routed:
    if not hours.is_open(team.hours or {}, team.holidays or [], team.time_zone, now):
        conversation.team_id = team.id
        entry = enqueue(session, conversation, team_id=team.id, reason="off_hours", now=now)
        if team.off_hours_reply and entry.off_hours_replied_at is None:
            if (send_reply or off_hours_reply)(session, conversation, team.off_hours_reply, now):
                entry.off_hours_replied_at = now
        return Routed("queued", team_id=team.id, reason="off_hours")
    if team.strategy == "first_responder":
        conversation.team_id = team.id
        enqueue(session, conversation, team_id=team.id, reason="offered", now=now)
        return Routed("queued", team_id=team.id, reason="offered")
    previous = previous_operator(session, conversation) if team.strategy == "sticky" else None
    waiting = team.strategy == "sticky" and previous is not None and team.sticky_wait_seconds > 0
    chosen = strategies.choose(team.strategy, _candidates(session, team), last_user_id=team.last_assigned_user_id,
                               previous_user_id=previous, sticky_expired=not waiting)
    if chosen is not None and try_assign(session, conversation, chosen.user_id, now=now, team=team, vetted=True):
        return Routed("assigned", user_id=chosen.user_id, team_id=team.id)
    conversation.team_id = team.id
    if waiting and chosen is None:
        enqueue(session, conversation, team_id=team.id, user_id=previous, reason="waiting_for_operator", now=now,
                wait_until=now + timedelta(seconds=team.sticky_wait_seconds))
        return Routed("queued", team_id=team.id, user_id=previous, reason="waiting_for_operator")
    enqueue(session, conversation, team_id=team.id, reason="no_operator", now=now)
    return Routed("queued", team_id=team.id, reason="no_operator")


def try_assign(session: Session, conversation: Conversation, user_id: int, *, now: datetime,
               team: Team | None = None, force: bool = False, replace: bool = False,
               vetted: bool = False) -> bool:
    """Assign when the operator is online and under capacity (checked under their state
    row's lock), into `team` when given; `force`: a person's explicit choice, capacity
    aside; `replace`: take it from its current operator (an SLA breach); `vetted`: the
    user is known to be an active operator (a team's candidate)."""
    state = _locked(session, OperatorState, user_id)
    if state is None:
        state_of(session, user_id)
        state = _locked(session, OperatorState, user_id)
    if not vetted:
        user = session.get(User, user_id)
        if user is None or not user.active or user.role == "viewer":
            return False
    if not force and (state.presence != "online" or open_count(session, user_id) >= state.capacity):
        return False
    conversation = _locked(session, Conversation, conversation.id)
    if conversation.status != "open" or (conversation.assignee_id is not None and not (force or replace)):
        return False
    if team is not None:
        conversation.team_id = team.id
        if team.strategy == "round_robin":  # the only strategy that reads it
            team.last_assigned_user_id = user_id
    assign(session, conversation, user_id, now=now)  # also takes it out of any queue
    state.last_assigned_at = now
    session.flush()
    return True


def reassign_away(session: Session, conversation: Conversation, team: Team, *, now: datetime) -> int | None:
    """Give the chat to another available member of the team (an SLA breach); None when
    nobody else can take it now (it stays where it is)."""
    current = conversation.assignee_id
    others = [c for c in _candidates(session, team) if c.user_id != current]
    strategy = team.strategy if team.strategy in ("round_robin", "least_busy") else "least_busy"
    chosen = strategies.choose(strategy, others, last_user_id=team.last_assigned_user_id)
    if chosen is None or not try_assign(session, conversation, chosen.user_id, now=now, team=team, replace=True,
                                        vetted=True):
        return None
    return chosen.user_id


def position(session: Session, entry: QueueEntry) -> int:
    """1 for the first in its queue (a team's, else an operator's)."""
    same = QueueEntry.team_id == entry.team_id if entry.team_id is not None else QueueEntry.user_id == entry.user_id
    earlier = session.scalar(select(func.count()).select_from(QueueEntry).where(
        same, (QueueEntry.queued_at < entry.queued_at) |
        ((QueueEntry.queued_at == entry.queued_at) & (QueueEntry.conversation_id < entry.conversation_id)))) or 0
    return earlier + 1


def enqueue(session: Session, conversation: Conversation, *, reason: str, now: datetime, team_id: int | None = None,
            user_id: int | None = None, wait_until: datetime | None = None) -> QueueEntry:
    entry = session.get(QueueEntry, conversation.id)
    if entry is None:
        entry = QueueEntry(conversation_id=conversation.id, queued_at=now)
        session.add(entry)
    entry.team_id, entry.user_id, entry.reason, entry.wait_until = team_id, user_id, reason, wait_until
    session.flush()
    contact = session.get(Contact, conversation.contact_id)
    team = session.get(Team, team_id) if team_id else None
    emit(session, "conversation.queued", {
        "conversation": payloads.conversation(session, conversation), "contact": payloads.contact(contact),
        "team": {"id": team.id, "name": team.name} if team else None,
        "operator": payloads.user(session.get(User, user_id)) if user_id else None,
        "reason": reason, "position": position(session, entry),
    }, now=now, ordering_key=payloads.ordering_key(conversation))
    return entry


def drain(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Hand waiting conversations to available operators, oldest first. Returns how
    many were assigned."""
    assigned = 0
    entries = list(session.scalars(select(QueueEntry).order_by(QueueEntry.queued_at, QueueEntry.conversation_id)
                                   .limit(limit)))
    teams: dict[int, Team] = {}
    for entry in entries:
        conversation = session.get(Conversation, entry.conversation_id)
        if conversation is None or conversation.status != "open" or conversation.assignee_id is not None:
            session.delete(entry)
            continue
        waiting = entry.user_id is not None and (entry.wait_until is None or entry.wait_until > now)
        if entry.user_id is not None and try_assign(session, conversation, entry.user_id, now=now):
            assigned += 1
            continue
        if waiting or entry.team_id is None or entry.reason == "offered":
            continue
        team = teams.get(entry.team_id) or session.get(Team, entry.team_id)
        teams[entry.team_id] = team
        if not hours.is_open(team.hours or {}, team.holidays or [], team.time_zone, now):
            continue
        strategy = "least_busy" if team.strategy in ("sticky", "first_responder") else team.strategy
        chosen = strategies.choose(strategy, _candidates(session, team), last_user_id=team.last_assigned_user_id)
        if chosen is not None and try_assign(session, conversation, chosen.user_id, now=now, team=team, vetted=True):
            assigned += 1
    return assigned


def claim_on_reply(session: Session, conversation_id: int, author_id: int, *, now: datetime) -> bool:
    """First responder: a team member's reply to a conversation offered to the team takes it."""
    entry = session.get(QueueEntry, conversation_id)
    if entry is None or entry.reason != "offered" or entry.team_id is None:
        return False
    member = session.get(TeamMember, (entry.team_id, author_id))
    conversation = session.get(Conversation, conversation_id)
    if member is None or conversation is None:
        return False
    return try_assign(session, conversation, author_id, now=now, team=session.get(Team, entry.team_id), force=True)


def transfer(session: Session, conversation: Conversation, *, now: datetime, to_user_id: int | None = None,
             to_team_id: int | None = None, by_user_id: int | None = None) -> Routed:
    """Hand the conversation to another operator or team; its history stays with it."""
    previous = {"assignee": payloads.user(session.get(User, conversation.assignee_id))
                if conversation.assignee_id else None, "team_id": conversation.team_id}
    if to_user_id is not None:
        conversation.team_id = to_team_id or conversation.team_id
        if conversation.assignee_id is not None:
            assign(session, conversation, None, now=now)
        if try_assign(session, conversation, to_user_id, now=now):
            result = Routed("assigned", user_id=to_user_id, team_id=conversation.team_id)
        else:
            enqueue(session, conversation, team_id=conversation.team_id, user_id=to_user_id,
                    reason="waiting_for_operator", now=now)
            result = Routed("queued", user_id=to_user_id, reason="waiting_for_operator")
    elif to_team_id is not None:
        if conversation.assignee_id is not None:
            assign(session, conversation, None, now=now)
        result = route_to_team(session, conversation, session.get(Team, to_team_id), now=now)
    else:
        raise ValueError("transfer needs an operator or a team")
    contact = session.get(Contact, conversation.contact_id)
    emit(session, "conversation.transferred", {
        "conversation": payloads.conversation(session, conversation), "contact": payloads.contact(contact),
        "from": previous, "to": {"user_id": to_user_id, "team_id": conversation.team_id},
        "by": payloads.user(session.get(User, by_user_id)) if by_user_id else None, "outcome": result.outcome,
    }, now=now, ordering_key=payloads.ordering_key(conversation))
    session.flush()
    drain(session, now=now)  # the previous operator may have room for a waiting chat now
    return result


def on_closed(session: Session, conversation: Conversation, *, now: datetime) -> None:
    """A closed chat leaves the queue and frees its operator's place."""
    entry = session.get(QueueEntry, conversation.id)
    if entry is not None:
        session.delete(entry)
    session.flush()
    drain(session, now=now)


def set_presence(session: Session, user_id: int, presence: str, *, now: datetime,
                 capacity: int | None = None) -> OperatorState:
    state = _locked(session, OperatorState, user_id) or state_of(session, user_id)
    state.presence = presence
    state.seen_at = now
    if capacity is not None:
        state.capacity = capacity
    state.changed_at = now
    session.flush()
    if presence == "online":
        drain(session, now=now)
    return state


def expire_presence(session: Session, *, now: datetime, timeout: timedelta) -> int:
    """Operators online without a request for `timeout` go offline."""
    stale = list(session.scalars(select(OperatorState).where(
        OperatorState.presence != "offline",
        (OperatorState.seen_at.is_(None)) | (OperatorState.seen_at < now - timeout))))
    for state in stale:
        state.presence, state.changed_at = "offline", now
    return len(stale)
