"""The template and broadcast funnels of a busy account's month on PostgreSQL: the
conversations and messages of bench/reports.py (200,000 conversations by default) and a
template message before each (20 broadcasts hold half of them), with the statuses and
prices the webhooks would have left; the customer's first message answers three in
four of them within the reply window. Keeps each template message's funnel row as
`hub reports rebuild` does (hub.reports.template_facts, migration 0026), then times
hub.reports.funnels over the month from those rows and, in the same run, checking each
message's reply (the funnel before migration 0026, its messages found by the partial
index of migration 0025). Also times the pass's share: the rows of 500 conversations.

    cd bench && flock /tmp/bench.lock ../.venv/bin/python funnels.py [--conversations 200000] [--rounds 5]

Prints the times (median of the rounds), the figures, and last ratio=<checked / kept>.
"""
from __future__ import annotations

import argparse
import statistics
import time

from _support import scratch_postgres

from sqlalchemy import select, text  # noqa: E402

from hub.platform.db import Database  # noqa: E402
from hub.models import Broadcast, Channel, Conversation  # noqa: E402
from hub.reports import template_facts  # noqa: E402
from hub.reports.funnels import funnels  # noqa: E402
from hub.reports.rows import Filters  # noqa: E402
from reports import seed  # noqa: E402

BROADCASTS = 20

# One in four template messages goes two days before the customer writes (no reply in
# the window); one in ten fails, two in ten are only accepted, three delivered, the
# rest read; the delivered and read ones cost 0.0850 USD.
TEMPLATES = """
WITH sent AS (
    INSERT INTO messages (conversation_id, direction, type, payload, status, sent_at, accepted_at, delivered_at,
                          read_at, failed_at, error_code, template_name, template_language, template_category,
                          cost, currency, pricing_category, created_at, updated_at)
    SELECT c.id, 'out', 'template', '{}'::jsonb, s.status, s.at, CASE WHEN s.status <> 'failed' THEN s.at END,
           CASE WHEN s.status IN ('delivered', 'read') THEN s.at + interval '5 seconds' END,
           CASE WHEN s.status = 'read' THEN s.at + interval '1 minute' END,
           CASE WHEN s.status = 'failed' THEN s.at + interval '2 seconds' END,
           CASE WHEN s.status = 'failed' THEN 131026 END,
           'promo_' || (c.id % 8), CASE WHEN c.id % 3 = 0 THEN 'en_US' ELSE 'ru' END, 'MARKETING',
           CASE WHEN s.status IN ('delivered', 'read') THEN 0.0850 END,
           CASE WHEN s.status IN ('delivered', 'read') THEN 'USD' END,
           CASE WHEN s.status IN ('delivered', 'read') THEN 'marketing' END, :base, :base
    FROM conversations c
    CROSS JOIN LATERAL (SELECT CASE WHEN c.id % 10 = 0 THEN 'failed' WHEN c.id % 10 < 3 THEN 'sent'
                                    WHEN c.id % 10 < 6 THEN 'delivered' ELSE 'read' END AS status,
                               c.opened_at - CASE WHEN c.id % 4 = 0 THEN interval '2 days'
                                                  ELSE interval '10 minutes' END AS at) s
    RETURNING id, conversation_id
)
INSERT INTO broadcast_recipients (broadcast_id, phone, contact_id, variables, status, message_id, created_at,
                                  updated_at)
SELECT :first_broadcast + (sent.conversation_id / 2) % :broadcasts, '+7900' || sent.conversation_id,
       sent.conversation_id, '{}'::jsonb, 'sent', sent.id, :base, :base
FROM sent WHERE sent.conversation_id % 2 = 0
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with scratch_postgres() as url:
        db = Database(url)
        began = time.perf_counter()
        start, end = seed(db, args.conversations)
        with db.scope() as s:
            channel = s.scalar(select(Channel.id))
            made = [Broadcast(name=f"B{i}", channel_id=channel, template_name=f"promo_{i % 8}",
                              template_language="ru", status="completed", created_at=start, updated_at=start)
                    for i in range(BROADCASTS)]
            s.add_all(made)
            s.flush()
            s.execute(text(TEMPLATES), {"base": start, "first_broadcast": made[0].id, "broadcasts": BROADCASTS})
            templates = s.scalar(text("SELECT count(*) FROM messages WHERE template_name IS NOT NULL"))
            messages = s.scalar(text("SELECT count(*) FROM messages"))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"seeded {messages} messages ({templates} template messages) in {args.conversations} conversations "
              f"in {time.perf_counter() - began:.1f} s")
        with db.scope() as s:
            t0 = time.perf_counter()
            template_facts.rebuild(s)
            marking = time.perf_counter() - t0
            marked = s.scalar(text("SELECT sum(replied) FROM report_template_messages"))
            some = list(s.scalars(select(Conversation.id).order_by(Conversation.id).limit(500)))
        with db.scope() as s:
            t0 = time.perf_counter()
            template_facts.mark(s, some)
            chunk = time.perf_counter() - t0
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE report_template_messages"))
        print(f"kept the template messages' rows ({marked} replied) in {marking:.1f} s (a pass's 500 conversations: "
              f"{chunk * 1000:.0f} ms)")
        month = Filters(start=start, end=end)  # the seed's month (the messages sent before it are out)
        times: dict[str, list[float]] = {"kept": [], "checked": []}
        found = None
        for _round in range(args.rounds):
            for which in ("kept", "checked"):
                with db.scope() as s:
                    t0 = time.perf_counter()
                    result = funnels(s, month, live=which == "checked")
                    times[which].append(time.perf_counter() - t0)
                found = found or result
                assert result == found, "the same figures from the kept rows and checked message by message"
        fast, slow = statistics.median(times["kept"]), statistics.median(times["checked"])
        total = {stage: sum(t[stage] for t in found["templates"]) for stage in
                 ("messages", "sent", "delivered", "read", "replied", "failed")}
        print(f"month's funnels: {len(found['templates'])} templates, {len(found['broadcasts'])} broadcasts, {total}")
        print(f"funnels of the month: from the kept rows {fast * 1000:.0f} ms, checked message by message "
              f"{slow * 1000:.0f} ms (median of {args.rounds})")
        db.dispose()
        print(f"ratio={slow / fast:.2f}")


if __name__ == "__main__":
    main()
