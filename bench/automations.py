"""Ingest with automations: inbound messages per second through `gunicorn wsgi:app` on
PostgreSQL with 20 published scenarios, against the same ingest with none, in the same
run, a `hub worker` reading the events beside it in both rounds.

The scenarios are keyword scenarios whose keywords the messages do not contain: every
message has its triggers checked by the worker, and none sends anything (the channel has
no reachable Graph API here). Ingest itself does no automation work (docs/automations.md);
this measures what the worker's reading costs the webhook path.

    .venv/bin/python bench/automations.py [--messages 3000] [--users 500] [--clients 16]

The last line is ratio=<msgs/s with 20 scenarios / msgs/s with none>.
"""
from __future__ import annotations

import argparse
import tempfile
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

from _support import ROOT, hub_env, scratch_postgres, start, stop, wait_for_workers, wait_until, worker_env
from ingest import APP_SECRET, PNID, WABA, _up, free_port, gunicorn, load

from hub.automations import store  # noqa: E402
from hub.channels.whatsapp.channels import create_channel  # noqa: E402
from hub.platform.db import Database, utcnow  # noqa: E402
from hub.automations.runtime import STREAM_TYPES  # noqa: E402
from hub.models import Cursor, Event, Run  # noqa: E402
from hub.shared.security import Vault  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

SCENARIOS = 20


def scenario(i: int) -> dict:
    return {"name": f"Bench {i}", "trigger": {"type": "keyword", "match": "contains",
                                             "keywords": [f"refund{i}"], "synonyms": [f"возврат{i}"]},
            "steps": [{"id": "q", "type": "ask", "text": "Your order number?", "validate": "number",
                       "save_as": "order", "next": "t"},
                      {"id": "t", "type": "text", "text": "Looking up {{answers.order}}"}]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    args = parser.parse_args()
    key = Fernet.generate_key().decode()
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        with db.scope() as session:
            channel = create_channel(session, Vault([key]), {
                "name": "bench", "phone_number_id": PNID, "waba_id": WABA, "access_token": "t",
                "app_secret": APP_SECRET}, now=utcnow())
            channel_key = channel.key
        env = hub_env(url, Path(tmp), key)
        env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'bench'}"
        port = free_port()
        procs = gunicorn("wsgi:app", port, env, args.workers)
        procs.append(start([str(ROOT / ".venv" / "bin" / "hub"), "worker"], worker_env(env)))
        target = f"http://127.0.0.1:{port}/webhooks/whatsapp/{channel_key}"
        results = {}
        try:
            wait_until(lambda: _up(f"http://127.0.0.1:{port}/"), 30)
            wait_for_workers(url, 1)
            load(target, 200, args.users, "warm", 4, 1)
            results["none"] = load(target, args.messages, args.users, "none", args.clients, args.procs)
            with db.scope() as session:
                for i in range(SCENARIOS):
                    made = store.create(session, scenario(i), now=utcnow())
                    store.publish(session, made, now=utcnow() - timedelta(seconds=5))
            load(target, 200, args.users, "warm2", 4, 1)
            results["with"] = load(target, args.messages, args.users, "with", args.clients, args.procs)

            def read_up() -> bool:
                """The worker's cursor reached the last event it reads."""
                with db.scope() as session:
                    last = session.scalar(select(func.max(Event.occurred_at)).where(
                        Event.type.in_(STREAM_TYPES)))
                    cursor = session.get(Cursor, store.STREAM)
                    return cursor is not None and last is not None and cursor.last_at >= last
            drained = wait_until(read_up, 300, interval=0.5)
        finally:
            stop(procs)
        with db.scope() as session:
            runs = session.scalar(select(func.count()).select_from(Run))
        db.dispose()
    none, with_ = results["none"], results["with"]
    print(f"{args.messages} webhooks per round, {args.users} users, {args.clients} clients, "
          f"gunicorn {args.workers} workers, one hub worker, PostgreSQL")
    print(f"no scenarios:            {none['rate']:7.0f} msg/s  p50 {none['p50']:6.1f} ms  p99 {none['p99']:6.1f} ms")
    print(f"{SCENARIOS} published scenarios: {with_['rate']:7.0f} msg/s  p50 {with_['p50']:6.1f} ms  "
          f"p99 {with_['p99']:6.1f} ms")
    print(f"the worker caught up with the events {drained:.1f} s after the last webhook; runs started: {runs} "
          "(expected 0: no message has a keyword)")
    print(f"ratio={with_['rate'] / none['rate']:.2f}")


if __name__ == "__main__":
    main()
