"""Tracked-link redirects: GET /l/<slug> per second through `gunicorn wsgi:app` on
PostgreSQL (each one records a visit with its tags and mints a code), beside a baseline
on the same server in the same run: a bare WSGI app answering a fixed 302
(bench/redirect_baseline.py).

Load comes from --procs separate processes, --clients threads in all, each with a
keep-alive requests session; every request carries UTM tags and a click id.

Both servers run side by side and the load alternates between them in --rounds rounds
(baseline, hub, hub, baseline, ...): on a shared machine other people's work comes and
goes, and measuring one server after the other would charge it all to whichever ran
second. Each server's rate is its requests over its own measured time.

    .venv/bin/python bench/redirect.py [--requests 6000] [--rounds 6] [--clients 16] [--workers 3]

The last line is ratio=<hub redirects/s / baseline redirects/s>.
"""
from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from _support import ROOT, hub_env, scratch_postgres, start, stop, wait_until

from hub.channels.whatsapp.channels import create_channel  # noqa: E402
from hub.platform.db import Database, utcnow  # noqa: E402
from hub.models import Visit  # noqa: E402
from hub.shared.security import Vault  # noqa: E402
from hub.tracking.links import create_link  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

SLUG = "spring-sale"
WARM_UP = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(url: str, numbers: list[int], out: list[float]) -> None:
    session = requests.Session()
    for n in numbers:
        params = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring",
                  "utm_content": f"banner-{n % 7}", "utm_term": "grey sofa", "gclid": f"EAIaIQobChMI{n:08d}"}
        headers = {"User-Agent": "Mozilla/5.0 (bench)", "Referer": "https://shop.example/sofas"}
        started = time.perf_counter()
        response = session.get(url, params=params, headers=headers, allow_redirects=False, timeout=30)
        out.append(time.perf_counter() - started)
        if response.status_code != 302 or not response.headers.get("Location", "").startswith("https://wa.me/"):
            raise SystemExit(f"{url} answered {response.status_code}: {response.text[:200]}")


def _load_process(url: str, numbers: list[int], clients: int, queue) -> None:
    latencies: list[float] = []
    threads = [threading.Thread(target=_client, args=(url, numbers[i::clients], latencies)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(latencies)


def combined(rounds: list[dict]) -> dict[str, float]:
    """One server's figures over all its rounds: requests over the time they took."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    return {"rate": sum(r["count"] for r in rounds) / sum(r["elapsed"] for r in rounds),
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000}


def load(url: str, count: int, clients: int, procs: int) -> dict:
    queue = multiprocessing.Queue()
    started = time.perf_counter()
    workers = [multiprocessing.Process(target=_load_process,
                                       args=(url, list(range(i, count, procs)), max(1, clients // procs), queue))
               for i in range(procs)]
    for w in workers:
        w.start()
    latencies = sorted(x for _ in workers for x in queue.get())
    for w in workers:
        w.join()
        if w.exitcode:
            raise SystemExit(f"a load process failed (exit {w.exitcode})")
    elapsed = time.perf_counter() - started
    return {"rate": count / elapsed, "count": count, "elapsed": elapsed, "latencies": latencies}


def gunicorn(app: str, port: int, env: dict, workers: int, threads: int) -> list:
    return [start([str(ROOT / ".venv" / "bin" / "gunicorn"), "--chdir", str(ROOT), "-w", str(workers),
                   "-k", "gthread", "--threads", str(threads), "-b", f"127.0.0.1:{port}",
                   "--log-level", "warning", app], env)]


def _up(url: str) -> bool:
    try:
        requests.get(url, timeout=1, allow_redirects=False)
        return True
    except requests.RequestException:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds the requests are split into")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers for both servers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()
    key = Fernet.generate_key().decode()
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        with db.scope() as session:
            channel = create_channel(session, Vault([key]), {
                "name": "bench", "phone_number_id": "2200000000000002", "waba_id": "1100000000000001",
                "display_number": "+1 555 000 1111", "access_token": "t", "app_secret": "s"}, now=utcnow())
            create_link(session, {"slug": SLUG, "channel_id": channel.id, "campaign": "Spring sale",
                                  "text_template": "Hello! My request number: {code}"}, now=utcnow())
        env = hub_env(url, Path(tmp), key, tracking__ip_salt="bench-salt")
        env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'bench'}"
        servers, procs = {}, []
        try:
            for name, app in (("baseline", "redirect_baseline:app"), ("hub", "wsgi:app")):
                port = free_port()
                procs += gunicorn(app, port, env, args.workers, args.threads)
                servers[name] = f"http://127.0.0.1:{port}"
            for base_url in servers.values():
                wait_until(lambda: _up(f"{base_url}/healthz"), 30)
                load(f"{base_url}/l/{SLUG}", WARM_UP, 4, 1)  # warm up connections, pools and caches
            results = {name: [] for name in servers}
            per_round = args.requests // args.rounds
            for r in range(args.rounds):
                order = ("baseline", "hub") if r % 2 == 0 else ("hub", "baseline")
                for name in order:
                    results[name].append(load(f"{servers[name]}/l/{SLUG}", per_round, args.clients, args.procs))
        finally:
            stop(procs)
        with db.scope() as session:
            visits = session.scalar(select(func.count()).select_from(Visit))
            codes = session.scalar(select(func.count(func.distinct(Visit.live_code))))
        db.dispose()
    base, hub = combined(results["baseline"]), combined(results["hub"])
    per_round = args.requests // args.rounds
    ratios = [h["rate"] / b["rate"] for b, h in zip(results["baseline"], results["hub"])]
    print(f"{per_round * args.rounds} redirects per server in {args.rounds} alternating rounds, {args.clients} clients "
          f"in {args.procs} load processes, gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL")
    print(f"baseline (bare WSGI 302):           {base['rate']:7.0f} redirects/s  p50 {base['p50']:6.1f} ms  "
          f"p99 {base['p99']:6.1f} ms")
    print(f"hub (/l/<slug>: visit + code + 302): {hub['rate']:7.0f} redirects/s  p50 {hub['p50']:6.1f} ms  "
          f"p99 {hub['p99']:6.1f} ms")
    print(f"per-round ratios: {min(ratios):.3f} to {max(ratios):.3f}")
    expected = per_round * args.rounds + WARM_UP
    print(f"visits recorded by the hub: {visits} with {codes} distinct live codes (expected {expected}, warm-up included)")
    print(f"ratio={hub['rate'] / base['rate']:.3f}")


if __name__ == "__main__":
    main()
