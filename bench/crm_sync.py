"""CRM sync: time and requests to sync N new conversations (contact + deal + notes each)
into a CRM emulator at the CRM's own rate limit, beside the floor: the fewest requests
the CRM's batch sizes allow, divided by its rate limit.

    .venv/bin/python bench/crm_sync.py <kind> [--mode timeline|chat] [--conversations 2000] [--notes 3]
                                              [--workers 1]

Kinds are connector packages with a benchkit module (connectors/<kind>/benchkit.py).
Events are emitted as the hub emits them (docs/events.md) into a scratch PostgreSQL
database and delivered by real `hub worker` processes; the clock starts once they are
connected to the database (their start-up is not sync time). The last line is
ratio=<elapsed/floor>; a ratio near 1 means the CRM's limit, not the hub, set the pace.

--mode chat runs the connector's chat mode instead (amoCRM Chats API, Bitrix24 Open
Lines, HubSpot custom channels; the kit's start_chat_emulator, chat_settings, chat_floor):
Test connection first (it connects the channel, as in the admin), then every
message.received becomes a message of the conversation's chat; --notes is then the
customer messages per conversation (default: the kit's CHAT_MESSAGES).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.fernet import Fernet

from _support import hub_env, scratch_postgres, start, stop, wait_for_workers, wait_until, worker_env

from hub.crm.store import build_connector, create_connector  # noqa: E402
from hub.platform.db import Database, utcnow  # noqa: E402
from hub.events.outbox import emit  # noqa: E402
from hub.models import ConnectorRecord, Delivery  # noqa: E402
from hub.shared.security import Vault  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def conversation_events(i: int, notes: int) -> list[tuple[str, dict]]:
    """conversation.started then `notes` message.received, as ingest emits them."""
    number = f"4915{10000000 + i:08d}"
    contact = {"id": 10 + i, "wa_id": number, "phone": f"+{number}", "name": f"Customer {i}",
               "username": None, "user_id": f"DE.{700000 + i}"}
    source = {"kind": "tracked_link", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": f"winter-{i % 7}",
              "utm_content": "ad-1", "utm_term": "sofa", "gclid": f"g{i}", "yclid": None, "fbclid": None,
              "campaign": "Winter sale", "link": "winter", "code": f"C{i:05d}",
              "landing_page": "https://shop.example/", "referrer": None, "referral": None} if i % 2 == 0 else \
        {"kind": "direct", **{k: None for k in ("utm_source", "utm_medium", "utm_campaign", "utm_content",
                                                "utm_term", "gclid", "yclid", "fbclid", "campaign", "link",
                                                "code", "landing_page", "referrer", "referral")}}
    conversation = {"id": 100 + i, "status": "open", "opened_at": iso(T0), "closed_at": None,
                    "channel": {"id": 1, "name": "Sales", "display_number": "+15550001111",
                                "phone_number_id": "2200000000000002"},
                    "assignee": None, "lead_source": source}
    events = [("conversation.started", {"conversation": conversation, "contact": contact})]
    for n in range(notes):
        message = {"id": 1000 * i + n + 1, "wa_message_id": f"wamid.bench.{i}.{n}", "direction": "in", "type": "text",
                   "text": f"Hello, question {n} about order {i}", "timestamp": iso(T0 + timedelta(seconds=n)),
                   "status": "received", "media": None, "reply_to": None, "template": None, "author": None}
        events.append(("message.received", {"conversation": conversation, "contact": contact, "message": message}))
    return events


def test_connection(db: Database, vault: Vault, connector_id: int) -> None:
    """What pressing Test connection does in the admin (chat modes connect their channel)."""
    with db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    result = build_connector(db, vault, record, clock=utcnow, http_timeout=30, base_url="http://hub.bench").check()
    if not result.ok:
        raise SystemExit(f"Test connection failed: {result.message}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("--mode", choices=("timeline", "chat"), default="timeline")
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--notes", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    kit = importlib.import_module(f"connectors.{args.kind}.benchkit")
    chat = args.mode == "chat"
    if args.notes is None:
        args.notes = kit.CHAT_MESSAGES if chat else 3
    key = Fernet.generate_key().decode()
    if chat:
        expected = {"chats": args.conversations, "messages": args.conversations * args.notes}
    else:
        expected = {"contacts": args.conversations, "deals": args.conversations,
                    "notes": args.conversations * args.notes}
    serve = kit.start_chat_emulator if chat else kit.start_emulator
    with serve() as emulator, scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        settings = kit.chat_settings(emulator) if chat else kit.connector_settings(emulator.base_url)
        with db.scope() as session:
            connector_id = create_connector(session, Vault([key]), kind=kit.KIND, name="bench",
                                            settings=settings, now=utcnow()).id
        if chat:
            test_connection(db, Vault([key]), connector_id)
        total = args.conversations * (1 + args.notes)
        env = worker_env(hub_env(url, Path(tmp), key, worker__poll_seconds="0.05", log__level="WARNING"))
        with db.scope() as session:
            for i in range(args.conversations):
                for type_, data in conversation_events(i, args.notes):
                    emit(session, type_, data, now=utcnow(), ordering_key=f"conversation:{100 + i}")
        before = emulator.stats()
        # The clock starts when the workers are connected to the database (imported,
        # configured, about to claim), not while the Python processes start: a hub
        # that is up has its workers running.
        procs = [start([sys.executable, "-m", "hub", "worker"], env) for _ in range(args.workers)]
        wait_for_workers(url, args.workers)
        started = time.perf_counter()

        def finished() -> bool:
            with db.scope() as session:
                left = session.scalar(select(func.count()).select_from(Delivery)
                                      .where(Delivery.status.in_(("pending", "leased"))))
            return left == 0

        try:
            wait_until(finished, timeout=3600, interval=0.2)
        finally:
            stop(procs)
        elapsed = time.perf_counter() - started
        after = emulator.stats()
        counts = emulator.counts()
        with db.scope() as session:
            dead_errors = list(session.scalars(select(Delivery.last_error).where(Delivery.status == "dead")))
        dead = len(dead_errors)
        db.dispose()
    requests = after["requests"] - before["requests"]
    limited = after["rate_limited"] - before["rate_limited"]
    floor_requests, floor_seconds = (kit.chat_floor if chat else kit.floor)(args.conversations, args.notes)
    shape = f"(a chat + {args.notes} messages)" if chat else f"(contact + deal + {args.notes} notes)"
    print(f"{args.kind} --mode {args.mode}: {args.conversations} conversations x {shape} = "
          f"{total} events, {args.workers} worker process(es), PostgreSQL")
    print(f"elapsed:        {elapsed:8.1f} s   (floor {floor_seconds:.1f} s)")
    print(f"requests:       {requests:8d}     (floor {floor_requests})")
    print(f"rate-limited:   {limited:8d}     (429 / QUERY_LIMIT_EXCEEDED answers)")
    print(f"in the CRM:     {counts}  expected {expected}")
    print(f"dead letters:   {dead}")
    for error in sorted(set(dead_errors))[:5]:
        print(f"  dead: {error}")
    if {k: counts.get(k) for k in expected} != expected or dead:
        print("WARNING: the CRM does not hold exactly what was sent")
    print(f"ratio={elapsed / floor_seconds:.2f}")


if __name__ == "__main__":
    main()
