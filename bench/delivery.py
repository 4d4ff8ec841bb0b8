"""Delivery throughput: events/s drained to a local webhook receiver by 1 and by 4
`hub worker` processes on PostgreSQL, beside a baseline measured in the same run (the
same receiver hit by a bare loop of signed POSTs from one process, one at a time).

Two receivers are measured: one that answers at once (the hub's own CPU cost is all
there is) and one that answers after --latency-ms, like a real endpoint across a network
(the default 20 ms). The last line is ratio=<4 workers / 1 worker> for the latter.

    .venv/bin/python bench/delivery.py [--events 4000] [--latency-ms 20]
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from _support import ROOT, hub_env, scratch_postgres, start, stop, wait_until

from hub.crm.store import create_connector, update_connector  # noqa: E402
from hub.platform.db import Database, utcnow  # noqa: E402
from hub.events.outbox import emit  # noqa: E402
from hub.models import ConnectorRecord, Delivery  # noqa: E402
from hub.shared.security import Vault  # noqa: E402
from connectors.webhook import signing  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

SECRET = "whsec_QmVuY2htYXJrU2VjcmV0S2V5MDEyMzQ1Njc4OWFiY2Q="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def baseline(url: str, count: int) -> float:
    """A bare loop of the same signed POSTs the connector sends, one at a time."""
    session = requests.Session()
    body = json.dumps({"id": "x", "type": "message.received", "data": {"n": 0}}).encode()
    started = time.perf_counter()
    for i in range(count):
        headers = {"Content-Type": "application/json",
                   **signing.headers(SECRET, f"base-{i}", int(time.time()), body)}
        session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    return count / (time.perf_counter() - started)


def done(db: Database) -> int:
    with db.scope() as session:
        return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "done"))


WARM_UP = 200  # events drained before the clock starts: processes up, pools and connections warm


def _emit(db: Database, count: int, prefix: str) -> None:
    """`count` events in one transaction, so the workers see all of them at once."""
    with db.scope() as session:
        for i in range(count):
            emit(session, "message.received", {"n": i, "text": "hello"}, now=utcnow(),
                 ordering_key=f"{prefix}:{i % max(1, count // 10)}")


def drain_rate(db: Database, env: dict, workers: int, count: int) -> float:
    """Events/s from the moment they are committed to the last one done, by workers
    already running: on 2 cores, four Python processes starting together take seconds
    before the first delivery, which is start-up cost, not delivery throughput."""
    procs = [start([sys.executable, "-m", "hub", "worker"], env) for _ in range(workers)]
    try:
        before = done(db)
        _emit(db, WARM_UP, f"warm-{workers}")
        wait_until(lambda: done(db) - before >= WARM_UP, timeout=300)
        before = done(db)
        _emit(db, count, f"conversation-{workers}")
        started = time.perf_counter()
        wait_until(lambda: done(db) - before >= count, timeout=900)
        elapsed = time.perf_counter() - started
    finally:
        stop(procs)
    return count / elapsed


def measure(db: Database, vault: Vault, env: dict, latency_ms: float, events: int) -> dict[str, float]:
    port = free_port()
    receiver = start([sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), str(latency_ms)])
    url = f"http://127.0.0.1:{port}/hook"
    try:
        wait_until(lambda: up(url), 10)
        with db.scope() as session:
            record = session.scalars(select(ConnectorRecord)).one()
            update_connector(session, vault, record, settings={"url": url}, now=utcnow())
        base_count = events // 2 if latency_ms == 0 else max(50, int(2000 / max(latency_ms, 1)))
        result = {"baseline": baseline(url, base_count),
                  "one": drain_rate(db, env, 1, events),
                  "four": drain_rate(db, env, 4, events)}
        seen = requests.get(url, timeout=5).json()
        result["lost"] = 2 * (events + WARM_UP) + base_count - seen["requests"]
        return result
    finally:
        stop([receiver])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    key = Fernet.generate_key().decode()
    vault = Vault([key])
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        with db.scope() as session:
            create_connector(session, vault, kind="webhook", name="bench",
                             settings={"url": "http://127.0.0.1:9/", "secret": SECRET, "concurrency": 4},
                             now=utcnow())
        env = hub_env(url, Path(tmp), key, worker__batch_size="50", worker__poll_seconds="0.02")
        instant = measure(db, vault, env, 0, args.events)
        slow = measure(db, vault, env, args.latency_ms, args.events)
        db.dispose()
    for title, r in ((f"receiver answering at once", instant),
                     (f"receiver answering after {args.latency_ms:g} ms", slow)):
        print(f"{title}:")
        print(f"  baseline (bare POST loop): {r['baseline']:8.0f} req/s")
        print(f"  1 worker:                  {r['one']:8.0f} events/s  ({r['one'] / r['baseline']:.2f}x baseline)")
        print(f"  4 workers:                 {r['four']:8.0f} events/s  ({r['four'] / r['baseline']:.2f}x baseline,"
              f" {r['four'] / r['one']:.2f}x 1 worker)")
        print(f"  requests missing at the receiver: {r['lost']}")
    print(f"events per run: {args.events} on PostgreSQL, batch 50, 4 parallel requests per worker")
    print(f"ratio={slow['four'] / slow['one']:.2f}")


if __name__ == "__main__":
    main()
