"""The reports' month summary on PostgreSQL with 1,000,000 messages in 200,000
conversations: from the incrementally kept aggregates (report_facts, the API's
/reports/summary) beside a baseline measured in the same run, the same figures by a
direct GROUP BY over the raw conversations and messages. Then the aggregates' lag
behind ingest: a writer stores messages with their events as fast as it can (the
ingest pattern: message + message.received in one transaction) while the scheduler's
pass (hub.reports.facts.follow) runs in a loop; the lag of a message is from its commit
to the end of the first pass that started after it.

    cd bench && flock /tmp/bench.lock ../.venv/bin/python reports.py [--conversations 200000] [--rounds 5]

Prints both times (median of the rounds, alternating), whether the figures agree, the
lag, and last ratio=<raw time / aggregate time>.
"""
from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from datetime import timedelta

from _support import scratch_postgres

from sqlalchemy import insert, select, text  # noqa: E402

from hub.platform.db import Database, utcnow  # noqa: E402
from hub.events.outbox import emit  # noqa: E402
from hub.models import Channel, Message, Team, User  # noqa: E402
from hub.reports import aggregate, facts  # noqa: E402
from hub.reports.rows import Filters  # noqa: E402

TEAMS, OPERATORS, MESSAGES_PER_CONVERSATION = 5, 50, 5
SOURCES = ("google", "yandex", "facebook", "tracked_link", "ad", "direct")

# One statement seeds everything in the database: contacts, conversations spread over
# 30 days, and five messages each (a customer message, a bot's reply, a person's reply,
# the customer again, a person again with a price on one in three); one in ten is
# answered by bots only (missed).
SEED = """
INSERT INTO contacts (id, wa_id, phone, name, created_at, updated_at)
SELECT g, '7900' || g, '+7900' || g, 'C' || g, :base, :base FROM generate_series(1, :n) g;
INSERT INTO conversations (id, channel_id, contact_id, status, assignee_id, team_id, opened_at, closed_at,
                           lead_source, created_at, updated_at)
SELECT g, :channel, g, CASE WHEN g % 2 = 0 THEN 'closed' ELSE 'open' END, :first_user + g % :operators,
       :first_team + g % :teams, :base + g * interval '13 seconds',
       CASE WHEN g % 2 = 0 THEN :base + g * interval '13 seconds' + interval '2 hours' END,
       CASE g % 6 WHEN 0 THEN '{"utm_source": "google", "utm_campaign": "winter"}'::jsonb
                  WHEN 1 THEN '{"utm_source": "yandex"}'::jsonb WHEN 2 THEN '{"utm_source": "facebook"}'::jsonb
                  WHEN 3 THEN '{"kind": "tracked_link"}'::jsonb WHEN 4 THEN '{"referral": {"source_id": "1"}}'::jsonb
                  ELSE '{}'::jsonb END,
       :base, :base
FROM generate_series(1, :n) g;
INSERT INTO messages (conversation_id, direction, type, text, payload, status, sent_at, author_id, cost, currency,
                      pricing_category, created_at, updated_at)
SELECT c.id, m.direction, 'text', 'x', '{}'::jsonb, 'sent', c.opened_at + m.offset_s * interval '1 second',
       CASE WHEN m.human AND c.id % 10 <> 0 THEN c.assignee_id END,
       CASE WHEN m.k = 5 AND c.id % 3 = 0 THEN 0.0125 END, CASE WHEN m.k = 5 AND c.id % 3 = 0 THEN 'USD' END,
       CASE WHEN m.k = 5 AND c.id % 3 = 0 THEN 'service' END, :base, :base
FROM conversations c
CROSS JOIN LATERAL (VALUES
    (1, 'in', false, 0), (2, 'out', false, 5), (3, 'out', true, (c.id * 37) % 3600 + 10),
    (4, 'in', false, (c.id * 37) % 3600 + 70), (5, 'out', true, (c.id * 37) % 3600 + 70 + (c.id * 13) % 600 + 1)
) AS m(k, direction, human, offset_s);
SELECT setval(pg_get_serial_sequence('contacts', 'id'), :n);
SELECT setval(pg_get_serial_sequence('conversations', 'id'), :n);
"""

# The baseline: the month's headline figures straight from the raw tables.
RAW = text("""
WITH firsts AS (
    SELECT c.id, c.team_id, c.assignee_id, c.status,
           min(m.sent_at) FILTER (WHERE m.direction = 'in') AS asked,
           sum(m.cost) AS cost, count(*) FILTER (WHERE m.direction = 'out' AND m.author_id IS NOT NULL) AS replies
    FROM conversations c JOIN messages m ON m.conversation_id = c.id
    WHERE c.opened_at >= :start AND c.opened_at < :end
    GROUP BY c.id
), replies AS (
    SELECT f.*, (SELECT min(m.sent_at) FROM messages m WHERE m.conversation_id = f.id AND m.direction = 'out'
                 AND m.author_id IS NOT NULL AND m.sent_at >= f.asked) AS answered_at
    FROM firsts f
), timed AS (
    SELECT r.*, extract(epoch FROM r.answered_at - (
        SELECT max(m.sent_at) FROM messages m WHERE m.conversation_id = r.id AND m.direction = 'in'
        AND m.sent_at <= r.answered_at)) AS frt
    FROM replies r
)
SELECT team_id, assignee_id, count(*) AS conversations, count(*) FILTER (WHERE status = 'closed') AS closed,
       count(answered_at) AS answered,
       count(*) FILTER (WHERE asked IS NOT NULL AND extract(epoch FROM coalesce(answered_at, :now) - asked) > 900)
           AS missed,
       sum(replies) AS replies, sum(cost) AS cost,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY round(frt)) AS median_frt
FROM timed GROUP BY GROUPING SETS ((team_id, assignee_id), ())
""")


def seed(db: Database, n: int) -> tuple:
    base = utcnow().replace(microsecond=0) - timedelta(days=31)
    with db.scope() as s:
        channel = Channel(name="bench", provider="cloud", phone_number_id="1", waba_id="1", key="bench",
                          display_number="+1", created_at=base, updated_at=base)
        s.add(channel)
        s.flush()
        s.execute(insert(User), [{"email": f"op{i}@bench.test", "name": f"Op {i}", "password_hash": "x",
                                  "role": "operator", "active": True, "created_at": base} for i in range(OPERATORS)])
        for t in range(TEAMS):
            s.add(Team(name=f"T{t}", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                       sla={}, created_at=base, updated_at=base))
        s.flush()
        first_user = s.scalar(select(User.id).order_by(User.id))
        first_team = s.scalar(select(Team.id).order_by(Team.id))
        params = {"base": base, "n": n, "channel": channel.id, "first_user": first_user, "operators": OPERATORS,
                  "first_team": first_team, "teams": TEAMS}
        for statement in SEED.split(";"):
            if statement.strip():
                s.execute(text(statement), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return base, base + timedelta(days=31)


def timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def ingest_lag(db: Database, n: int, seconds: float) -> tuple[int, list[float], list[float]]:
    """Messages stored by a writer for `seconds` while the facts follow; their lags."""
    committed: list[float] = []
    passes: list[tuple[float, float]] = []
    stop = threading.Event()
    author = None
    with db.scope() as s:
        author = s.scalar(select(User.id).order_by(User.id))

    def writer() -> None:
        rnd = random.Random(7)
        while not stop.is_set():
            cid = rnd.randrange(1, n + 1)
            now = utcnow()
            with db.scope() as s:
                s.execute(insert(Message), {"conversation_id": cid, "direction": "out", "type": "text", "text": "y",
                                            "payload": {}, "status": "sent", "sent_at": now, "author_id": author,
                                            "created_at": now, "updated_at": now})
                emit(s, "message.sent", {"conversation": {"id": cid}}, now=now, ordering_key=f"conversation:{cid}")
            committed.append(time.perf_counter())

    thread = threading.Thread(target=writer)
    thread.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter()
        with db.scope() as s:
            facts.follow(s, now=utcnow())
        passes.append((began, time.perf_counter()))
        time.sleep(0.2)
    stop.set()
    thread.join()
    lags = []
    for at in committed:
        done = next((finish for start, finish in passes if start >= at), None)
        if done is not None:
            lags.append(done - at)
    return len(committed), lags, [finish - start for start, finish in passes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lag-seconds", type=float, default=20)
    args = parser.parse_args()
    with scratch_postgres() as url:
        db = Database(url)
        n = args.conversations
        began = time.perf_counter()
        start, end = seed(db, n)
        with db.scope() as s:
            messages = s.scalar(text("SELECT count(*) FROM messages"))
        print(f"seeded {messages} messages in {n} conversations in {time.perf_counter() - began:.1f} s")
        with db.scope() as s:
            build = timed(lambda: facts.rebuild(s, now=utcnow()))
        # As autovacuum would after the load (the raw tables had theirs after the seed):
        # the planner's statistics and the visibility map the index-only scans rely on.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("report_facts", "report_times", "report_buckets", "report_rollups", "report_rollup_money"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
        print(f"hub reports rebuild: {build:.1f} s ({n / build:.0f} conversations/s)")
        month = Filters(start=start, end=end)
        raw_times, aggregate_times = [], []
        raw_total = figures = None
        for round_ in range(args.rounds):
            order = ("raw", "aggregate") if round_ % 2 == 0 else ("aggregate", "raw")
            for which in order:
                with db.scope() as s:
                    now = utcnow()
                    if which == "raw":
                        t0 = time.perf_counter()
                        result = s.execute(RAW, {"start": start, "end": end, "now": now}).all()
                        raw_times.append(time.perf_counter() - t0)
                        raw_total = next(r for r in result if r.team_id is None and r.assignee_id is None)
                    else:
                        t0 = time.perf_counter()
                        figures = aggregate.summary(s, month, now=now)
                        aggregate_times.append(time.perf_counter() - t0)
        same = (raw_total.conversations, raw_total.closed, raw_total.answered, raw_total.missed,
                float(raw_total.median_frt)) == (figures["conversations"], figures["closed"], figures["answered"],
                                                 figures["missed"],
                                                 float(figures["first_response_seconds"]["median"]))
        same = same and str(raw_total.cost.normalize()) == str(
            sum(__import__("decimal").Decimal(c["amount"]) for c in figures["cost"]).normalize())
        raw_time, aggregate_time = statistics.median(raw_times), statistics.median(aggregate_times)
        print(f"month summary over {figures['conversations']} conversations: raw GROUP BY {raw_time * 1000:.0f} ms, "
              f"aggregates {aggregate_time * 1000:.0f} ms (median of {args.rounds}); same figures: "
              f"{'yes' if same else 'NO'} (conversations {figures['conversations']}, answered "
              f"{figures['answered']}, missed {figures['missed']}, first response median "
              f"{figures['first_response_seconds']['median']} s)")
        stored, lags, durations = ingest_lag(db, n, args.lag_seconds)
        if lags:
            lags.sort()
            print(f"lag behind ingest ({stored} messages in {args.lag_seconds:.0f} s, {len(durations)} passes of "
                  f"median {statistics.median(durations) * 1000:.0f} ms): median {statistics.median(lags):.2f} s, "
                  f"p99 {lags[int(len(lags) * 0.99) - 1 if len(lags) > 1 else 0]:.2f} s, max {lags[-1]:.2f} s")
        db.dispose()
        print(f"ratio={raw_time / aggregate_time:.2f}")


if __name__ == "__main__":
    main()
