"""Routing decisions per second on PostgreSQL with 10,000 open conversations and 500
operators, beside a baseline measured in the same run: a plain indexed UPDATE of a
conversation's assignee, one transaction each.

Each routing decision is what ingest does for a conversation a customer has just
opened: the rules tried in order (one per team, on the contact's name), the team's
least-busy strategy over its 100 members and their open chats, the assignment under the
operator's row lock, conversation.assigned emitted, commit. Rounds alternate between the
two (baseline, routing, routing, baseline, ...) so that other work on the machine is
shared between them. The p99 is of the time from the start of the decision to its
commit (the customer's message is already stored: that part is the ingest benchmark's).

    .venv/bin/python bench/routing.py [--decisions 2000] [--rounds 4]

The last line is ratio=<routing decisions/s / baseline updates/s>.
"""
from __future__ import annotations

import argparse
import statistics
import time

from _support import scratch_postgres

from sqlalchemy import insert, select, text, update  # noqa: E402

from hub.platform.db import Database, utcnow  # noqa: E402
from hub.models import Channel, Contact, Conversation, OperatorState, RoutingRule, Team, TeamMember, User  # noqa: E402
from hub.routing import engine  # noqa: E402

TEAMS = 5
OPERATORS = 500
OPEN = 10_000


def seed(db: Database, decisions: int) -> tuple[list[int], list[int]]:
    """Operators, teams, rules, OPEN open conversations (most assigned already), and the
    conversations to route and to update. Returns (to route, to update)."""
    now = utcnow()
    with db.scope() as s:
        channel = Channel(name="bench", provider="cloud", phone_number_id="1", waba_id="1", key="bench",
                          display_number="+1", created_at=now, updated_at=now)
        s.add(channel)
        s.flush()
        s.execute(insert(User), [{"email": f"op{i}@bench.test", "name": f"Op {i}", "password_hash": "x",
                                  "role": "operator", "active": True, "created_at": now}
                                 for i in range(OPERATORS)])
        users = list(s.scalars(select(User.id).order_by(User.id)))
        s.execute(insert(OperatorState), [{"user_id": u, "presence": "online", "capacity": 60, "changed_at": now}
                                          for u in users])
        for t in range(TEAMS):
            team = Team(name=f"T{t}", strategy="least_busy", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                        sla={}, created_at=now, updated_at=now)
            s.add(team)
            s.flush()
            members = users[t::TEAMS]
            s.execute(insert(TeamMember), [{"team_id": team.id, "user_id": u} for u in members])
            s.add(RoutingRule(position=t, name=f"T{t}", enabled=True, conditions={"contact": {"name": f"T{t} "}},
                              team_id=team.id, created_at=now))
        total = OPEN + 2 * decisions
        s.execute(insert(Contact), [{"wa_id": f"1555{i:08d}", "name": f"T{i % TEAMS} customer {i}",
                                     "created_at": now, "updated_at": now} for i in range(total)])
        contacts = list(s.scalars(select(Contact.id).order_by(Contact.id)))
        rows = []
        for i, contact_id in enumerate(contacts):
            assigned = users[i % OPERATORS] if i < OPEN - decisions else None
            rows.append({"channel_id": channel.id, "contact_id": contact_id, "status": "open",
                         "assignee_id": assigned, "opened_at": now, "created_at": now, "updated_at": now})
        s.execute(insert(Conversation), rows)
        ids = list(s.scalars(select(Conversation.id).where(Conversation.assignee_id.is_(None))
                            .order_by(Conversation.id)))
    # What autovacuum does to a table after bulk inserts: statistics and the visibility
    # map (the open-chat counts become index-only scans), for the baseline's table too.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return ids[:decisions], ids[decisions:2 * decisions]


def route_batch(db: Database, ids: list[int]) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for conversation_id in ids:
        t0 = time.perf_counter()
        with db.scope() as s:
            result = engine.route(s, engine.load_for_routing(s, conversation_id), now=utcnow())
            if result.outcome != "assigned":
                raise SystemExit(f"conversation {conversation_id} was not assigned: {result}")
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - started, latencies


def update_batch(db: Database, ids: list[int], users: list[int]) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for i, conversation_id in enumerate(ids):
        t0 = time.perf_counter()
        with db.scope() as s:
            s.execute(update(Conversation).where(Conversation.id == conversation_id)
                      .values(assignee_id=users[i % len(users)], updated_at=utcnow()))
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - started, latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with scratch_postgres() as url:
        db = Database(url)
        to_route, to_update = seed(db, args.decisions)
        with db.scope() as s:
            users = list(s.scalars(select(User.id).order_by(User.id)))
        route_batch(db, to_route[:50])  # warm up caches and the pool
        update_batch(db, to_update[:50], users)
        to_route, to_update = to_route[50:], to_update[50:]
        per = len(to_route) // args.rounds
        timed = {"routing": [0.0, []], "baseline": [0.0, []]}
        for r in range(args.rounds):
            chunk = slice(r * per, (r + 1) * per)
            order = ("baseline", "routing") if r % 2 == 0 else ("routing", "baseline")
            for name in order:
                elapsed, lat = (route_batch(db, to_route[chunk]) if name == "routing"
                                else update_batch(db, to_update[chunk], users))
                timed[name][0] += elapsed
                timed[name][1] += lat
        with db.scope() as s:
            over = s.execute(text(
                "SELECT count(*) FROM (SELECT c.assignee_id, count(*) AS n FROM conversations c "
                "JOIN operator_states o ON o.user_id = c.assignee_id WHERE c.status = 'open' "
                "GROUP BY c.assignee_id, o.capacity HAVING count(*) > o.capacity) x")).scalar()
        db.dispose()
    count = per * args.rounds
    rate = {name: count / timed[name][0] for name in timed}
    print(f"{count} decisions and {count} baseline updates in {args.rounds} alternating rounds; "
          f"{OPEN} open conversations, {OPERATORS} operators in {TEAMS} teams, PostgreSQL")
    print(f"baseline (indexed UPDATE of the assignee): {rate['baseline']:7.0f}/s  "
          f"p50 {statistics.median(timed['baseline'][1]) * 1000:6.2f} ms  p99 {p99(timed['baseline'][1]):6.2f} ms")
    print(f"routing (rules + least busy + lock + event): {rate['routing']:7.0f}/s  "
          f"p50 {statistics.median(timed['routing'][1]) * 1000:6.2f} ms  p99 {p99(timed['routing'][1]):6.2f} ms")
    print(f"operators above capacity afterwards: {over}")
    print(f"ratio={rate['routing'] / rate['baseline']:.3f}")


if __name__ == "__main__":
    main()
