"""The enabled routing rules and what routing reads of the teams, remembered for
RULES_TTL seconds: ingest routes every new conversation, and with no rule configured
that must cost nothing (saving rules or teams in this process forgets them at once;
other processes see a change within the TTL)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import RoutingRule, Team

RULES_TTL = 5.0
_lock = threading.Lock()
_known: dict[str, tuple[float, "Snapshot"]] = {}  # database URL -> (read at, snapshot)


@dataclass(frozen=True)
class RuleView:
    id: int
    conditions: dict[str, Any]
    team_id: int | None
    user_id: int | None


@dataclass(frozen=True)
class TeamView:
    """What routing reads of a team on every conversation (its writable state, the
    round-robin turn, stays in the database)."""

    id: int
    strategy: str
    time_zone: str
    hours: dict[str, Any]
    holidays: tuple[str, ...]
    channel_ids: tuple[int, ...]

    def serves(self, channel_id: int) -> bool:
        return not self.channel_ids or channel_id in self.channel_ids


@dataclass(frozen=True)
class Snapshot:
    rules: tuple[RuleView, ...]  # enabled, in the order they are tried
    teams: dict[int, TeamView]


def _key(session: Session) -> str:
    return str(session.get_bind().url)


def forget(session: Session | None = None) -> None:
    """Rules or teams changed: read them again on the next conversation."""
    with _lock:
        if session is None:
            _known.clear()
        else:
            _known.pop(_key(session), None)


def snapshot(session: Session, *, clock=time.monotonic) -> Snapshot:
    """The enabled rules and the teams, read at most every RULES_TTL seconds."""
    key = _key(session)
    now = clock()
    with _lock:
        cached = _known.get(key)
    if cached is not None and now - cached[0] < RULES_TTL:
        return cached[1]
    rules = tuple(RuleView(r.id, dict(r.conditions or {}), r.team_id, r.user_id) for r in session.execute(
        select(RoutingRule.id, RoutingRule.conditions, RoutingRule.team_id, RoutingRule.user_id)
        .where(RoutingRule.enabled.is_(True)).order_by(RoutingRule.position, RoutingRule.id)))
    teams = {}
    if rules:
        teams = {t.id: TeamView(t.id, t.strategy, t.time_zone, dict(t.hours or {}), tuple(t.holidays or ()),
                                tuple(t.channel_ids or ())) for t in session.execute(
            select(Team.id, Team.strategy, Team.time_zone, Team.hours, Team.holidays, Team.channel_ids))}
    found = Snapshot(rules, teams)
    with _lock:
        _known[key] = (now, found)
    return found


def rules_exist(session: Session, *, clock=time.monotonic) -> bool:
    return bool(snapshot(session, clock=clock).rules)
