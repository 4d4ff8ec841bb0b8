"""A broadcast of 10,000 recipients against the WhatsApp emulator at a throughput limit
of 80 messages per second, sent by one `hub worker` process on PostgreSQL.

The emulator enforces the limit over a sliding second (130429 past it). The figure is
the achieved rate, from the first accepted send to the last, against the limit; the run
also counts 130429 answers and reads the worker's peak memory (VmHWM) before it stops.
Status webhooks are not played back: sending is what is measured.

    cd bench && flock /tmp/bench.lock ../.venv/bin/python broadcast.py [--recipients 10000] [--mps 80]

The last line is ratio=<achieved messages/s / limit>.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from _support import hub_env, scratch_postgres, start, stop, wait_for_workers, worker_env

from hub.broadcasts import audiences, lifecycle  # noqa: E402
from hub.channels.whatsapp.channels import create_channel  # noqa: E402
from hub.channels.whatsapp.emulator import WhatsAppEmulator  # noqa: E402
from hub.platform.db import Database, utcnow  # noqa: E402
from hub.models import Broadcast, Channel, Template  # noqa: E402
from hub.shared.security import Vault  # noqa: E402

PNID, WABA, TOKEN = "2200000000000777", "1100000000000777", "EAAG-bench"
BODY = [{"type": "BODY", "text": "Hi {{1}}, your code is {{2}}."}]


def csv_of(count: int) -> bytes:
    lines = ["phone;first_name;code"] + [f"+4915{100000000 + i};Name{i};C{i:05d}" for i in range(count)]
    return "\n".join(lines).encode()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--mps", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1, help="worker threads of the one worker process")
    args = parser.parse_args()
    key = Fernet.generate_key().decode()
    emu = WhatsAppEmulator()
    with emu.serve() as server, scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        emu.add_number(phone_number_id=PNID, waba_id=WABA, display_phone_number="15550007777", token=TOKEN,
                       app_secret="bench-secret", verify_token="vt", webhook_url="http://127.0.0.1:9/none",
                       mps=args.mps, messaging_limit="TIER_UNLIMITED")
        emu.add_template(WABA, name="promo", language="en", category="MARKETING", components=BODY)
        db, vault, now = Database(url), Vault([key]), utcnow()
        with db.scope() as s:
            channel = create_channel(s, vault, {
                "name": "bench", "provider": "cloud", "phone_number_id": PNID, "waba_id": WABA,
                "display_number": "+1 555 000 7777", "api_base_url": server.base_url, "verify_token": "vt",
                "access_token": TOKEN, "app_secret": "bench-secret"}, now=now)
            channel.mps, channel.messaging_limit, channel.quality_rating = args.mps, "TIER_UNLIMITED", "GREEN"
            s.add(Template(waba_id=WABA, name="promo", language="en", status="APPROVED", category="MARKETING",
                           components=BODY, created_at=now, updated_at=now))
            s.flush()
            audience = audiences.create_from_csv(s, name="bench", data=csv_of(args.recipients), now=now)
            broadcast = lifecycle.create(s, name="bench", channel_id=channel.id, audience_id=audience.id,
                                         template_name="promo", template_language="en",
                                         variables=[{"column": "first_name"}, {"column": "code"}], now=now)
            broadcast_id = broadcast.id
        env = worker_env(hub_env(url, Path(tmp), key, worker__poll_seconds="0.01", log__level="WARNING",
                                 whatsapp__send_batch_size="20", worker__threads=str(args.threads)))
        proc = start([sys.executable, "-m", "hub", "worker"], env)
        try:
            wait_for_workers(url, 1)
            with db.scope() as s:
                lifecycle.start(s, broadcast_id, now=utcnow())
            deadline = time.monotonic() + args.recipients / args.mps * 3 + 60
            while time.monotonic() < deadline:
                with db.scope() as s:
                    status = s.get(Broadcast, broadcast_id).status
                if status == "completed":
                    break
                time.sleep(0.5)
            rss = peak_rss_mb(proc.pid)
        finally:
            stop([proc])
        with emu.lock:
            sent = sorted(m.at for m in emu.sent if m.type == "template")
            throttled = sum(1 for r in emu.requests if r.status != 200 and r.endpoint == "messages")
            unique = len({m.recipient.wa_id for m in emu.sent if m.type == "template"})
        seconds = (sent[-1] - sent[0]).total_seconds() if len(sent) > 1 else float("nan")
        achieved = (len(sent) - 1) / seconds if len(sent) > 1 else 0.0
        print(f"broadcast {status}: {len(sent)} sent to {unique} people (of {args.recipients}) in {seconds:.1f} s")
        print(f"achieved {achieved:.1f} messages/s, limit {args.mps}/s; refused answers (130429): {throttled}")
        print(f"peak RSS of the sending worker: {rss:.0f} MB")
        print(f"ratio={achieved / args.mps:.3f}")


if __name__ == "__main__":
    main()
