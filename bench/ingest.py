"""Webhook ingest: messages per second and p50/p99 latency through `gunicorn wsgi:app`
on PostgreSQL, beside a baseline on the same server in the same run: a bare Flask
endpoint that checks the request is the channel's (Meta's signature, or Telegram's
secret token) and inserts the raw body (bench/ingest_baseline.py).

Each request is one webhook (a WhatsApp or Instagram one signed, a Telegram update with
the bot's secret token) with one text message from one of --users users, posted by
--clients concurrent clients in --procs load processes.

    .venv/bin/python bench/ingest.py [--channel whatsapp|telegram|instagram] [--messages 4000]
                                     [--users 500] [--clients 16]

The last line is ratio=<hub msgs/s / baseline msgs/s>.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from _support import ROOT, hub_env, scratch_postgres, start, stop, wait_until

from hub.channels.whatsapp.channels import create_channel  # noqa: E402
from hub.channels.meta_signature import sign_meta  # noqa: E402
from hub.platform.db import Database, utcnow  # noqa: E402
from hub.models import Channel, Message  # noqa: E402
from hub.shared.security import Vault, random_key  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

APP_SECRET = "bench-app-secret-0123456789"
SECRET_TOKEN = "bench-secret-token-0123456789abcdef"
THREADS = 4
PNID, WABA = "2200000000000002", "1100000000000001"
BOT_ID, IG_ACCOUNT = 7000000001, "17841400000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def whatsapp_body(n: int, users: int, run: str) -> bytes:
    user = 15550000000 + n % users
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": f"User {n % users}"}, "wa_id": str(user)}],
        "messages": [{"from": str(user), "id": f"wamid.{run}.{n}", "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": f"Hello, message {n} \u2014 is my order shipped?"}}],
    }
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(payload, ensure_ascii=True).encode()


def telegram_body(n: int, users: int, run: str) -> bytes:
    """A private-chat text update; update ids are unique per run (the hub applies each once)."""
    user = 100000 + n % users
    base = {"warm-baseline": 0, "baseline": 1, "warm-hub": 2, "hub": 3}.get(run, 4) * 10_000_000
    update = {"update_id": base + n, "message": {
        "message_id": base + n, "date": int(time.time()), "text": f"Hello, message {n} \u2014 is my order shipped?",
        "from": {"id": user, "is_bot": False, "first_name": "User", "last_name": str(n % users),
                 "username": f"user{n % users}", "language_code": "en"},
        "chat": {"id": user, "type": "private", "first_name": "User", "last_name": str(n % users),
                 "username": f"user{n % users}"}}}
    return json.dumps(update, ensure_ascii=True).encode()


def instagram_body(n: int, users: int, run: str) -> bytes:
    user = f"99{n % users:014d}"
    now_ms = int(time.time() * 1000)
    event = {"sender": {"id": user}, "recipient": {"id": IG_ACCOUNT}, "timestamp": now_ms,
             "message": {"mid": f"aWdfZAG1.{run}.{n}", "text": f"Hello, message {n} \u2014 is my order shipped?"}}
    payload = {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": now_ms, "messaging": [event]}]}
    return json.dumps(payload, ensure_ascii=True).encode()


def meta_headers(data: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign_meta(APP_SECRET, data)}


def telegram_headers(data: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN}


def whatsapp_channel(session, vault: Vault) -> str:
    return create_channel(session, vault, {
        "name": "bench", "phone_number_id": PNID, "waba_id": WABA, "access_token": "t",
        "app_secret": APP_SECRET}, now=utcnow()).key


def _channel_row(session, vault: Vault, kind: str, provider: str, pnid: str, display: str,
                 secrets: dict[str, str]) -> str:
    """The row the hub's create call would store; written directly, since creating one
    asks Telegram or Meta first and the bench measures only the webhook."""
    now = utcnow()
    channel = Channel(key=random_key(), kind=kind, provider=provider, name="bench", phone_number_id=pnid,
                      display_number=display, api_base_url="", mps=20, health="ok",
                      secrets_enc=vault.encrypt(secrets), created_at=now, updated_at=now)
    session.add(channel)
    session.flush()
    return channel.key


def telegram_channel(session, vault: Vault) -> str:
    return _channel_row(session, vault, "telegram", "bot_api", f"tg:{BOT_ID}", "@bench_bot",
                        {"bot_token": f"{BOT_ID}:" + "A" * 35, "secret_token": SECRET_TOKEN})


def instagram_channel(session, vault: Vault) -> str:
    return _channel_row(session, vault, "instagram", "instagram", f"ig:{IG_ACCOUNT}", "@bench_shop",
                        {"access_token": "bench-access-token-0123456789", "app_secret": APP_SECRET,
                         "verify_token": "bench-verify-token"})


# kind: (the channel's row, one webhook's body, its headers, what the baseline checks)
CHANNELS = {
    "whatsapp": (whatsapp_channel, whatsapp_body, meta_headers, "signature"),
    "telegram": (telegram_channel, telegram_body, telegram_headers, "secret token"),
    "instagram": (instagram_channel, instagram_body, meta_headers, "signature"),
}
KIND = "whatsapp"


def _client(url: str, numbers: list[int], users: int, run: str, out: list[float], errors: list[str]) -> None:
    session = requests.Session()
    _, body, sign, _ = CHANNELS[KIND]
    for n in numbers:
        data = body(n, users, run)
        headers = sign(data)
        started = time.perf_counter()
        response = session.post(url, data=data, headers=headers, timeout=30)
        out.append(time.perf_counter() - started)
        if response.status_code != 200:
            # Reported by load(): an exception would end only this thread, silently.
            errors.append(f"{url} answered {response.status_code}: {response.text[:200]}")
            return


def _load_process(url: str, numbers: list[int], users: int, run: str, clients: int, queue, kind: str) -> None:
    global KIND
    KIND = kind
    latencies: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_client, args=(url, numbers[i::clients], users, run, latencies, errors))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((latencies, errors))


def load(url: str, messages: int, users: int, run: str, clients: int, procs: int) -> dict[str, float]:
    queue = multiprocessing.Queue()
    per = [list(range(i, messages, procs)) for i in range(procs)]
    started = time.perf_counter()
    workers = [multiprocessing.Process(target=_load_process,
                                       args=(url, per[i], users, run, max(1, clients // procs), queue, KIND))
               for i in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    errors = [e for _, errs in results for e in errs]
    if errors:
        raise SystemExit(f"{len(errors)} client(s) stopped on an error, e.g. {errors[0]}")
    latencies = [x for lats, _ in results for x in lats]
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rate": messages / elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def gunicorn(app: str, port: int, env: dict, workers: int) -> list:
    return [start([str(ROOT / ".venv" / "bin" / "gunicorn"), "--chdir", str(ROOT), "-w", str(workers),
                   "-k", "gthread", "--threads", str(THREADS), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                   app], env)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channel", choices=sorted(CHANNELS), default="whatsapp")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers for both servers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()
    global THREADS, KIND
    THREADS, KIND = args.threads, args.channel
    make_channel, _, _, checked = CHANNELS[KIND]
    key = Fernet.generate_key().decode()
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        with db.scope() as session:
            channel_key = make_channel(session, Vault([key]))
        env = hub_env(url, Path(tmp), key)
        env["BENCH_APP_SECRET"] = APP_SECRET
        env["BENCH_SECRET_TOKEN"] = SECRET_TOKEN
        env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'bench'}"
        results = {}
        for name, app in (("baseline", "ingest_baseline:app"), ("hub", "wsgi:app")):
            port = free_port()
            procs = gunicorn(app, port, env, args.workers)
            target = f"http://127.0.0.1:{port}/webhooks/{KIND}/{channel_key}"
            try:
                wait_until(lambda: _up(f"http://127.0.0.1:{port}/"), 120)  # slow to start on a busy machine
                load(target, 200, args.users, f"warm-{name}", 4, 1)  # warm up connections and caches
                results[name] = load(target, args.messages, args.users, name, args.clients, args.procs)
            finally:
                stop(procs)
        with db.scope() as session:
            stored = session.scalar(select(func.count()).select_from(Message))
        db.dispose()
    base, hub = results["baseline"], results["hub"]
    print(f"{args.messages} {'' if KIND == 'whatsapp' else KIND + ' '}webhooks, {args.users} users, "
          f"{args.clients} clients, gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL")
    label = "baseline (verify + insert raw):" if KIND == "whatsapp" else f"baseline ({checked} + insert raw):"
    print(f"{label:<31} {base['rate']:7.0f} msg/s  p50 {base['p50']:6.1f} ms  "
          f"p99 {base['p99']:6.1f} ms")
    print(f"hub (full ingest + events):     {hub['rate']:7.0f} msg/s  p50 {hub['p50']:6.1f} ms  "
          f"p99 {hub['p99']:6.1f} ms")
    print(f"messages stored by the hub: {stored} (expected {args.messages + 200})")
    print(f"ratio={hub['rate'] / base['rate']:.2f}")


def _up(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
