"""Restart safety: a worker process SIGKILLed while 50 runs wait; after a restart every
wait fires exactly once."""
from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Message, Run
from tests.automations.support import Hub
from tests.support.processes import hub_env, start_hub, stop, wait_for
from tests.support.whatsapp import make_channel

pytestmark = pytest.mark.slow

WAIT = {"name": "Wait", "trigger": {"type": "keyword", "keywords": ["hi"]}, "steps": [
    {"id": "w", "type": "wait", "seconds": 600, "on_reply": "ignore", "next": "t"},
    {"id": "t", "type": "text", "text": "Wake up"}]}


def woken(runtime) -> Counter:
    with runtime.db.scope() as session:
        return Counter(session.scalars(select(Message.conversation_id).where(
            Message.direction == "out", Message.text == "Wake up")))


def test_sigkill_while_fifty_runs_wait(runtime, client, database_url, tmp_path, monkeypatch):
    import tests.automations.support as support

    # Nothing listens there: the bot's messages stay queued, the workers are not held up.
    monkeypatch.setattr(support, "make_channel", lambda rt: make_channel(rt, api_base_url="http://127.0.0.1:9"))
    hub = Hub(runtime, client)
    hub.publish(WAIT)
    for i in range(50):
        hub.say(f"4917{i:08d}", "hi")
    hub.work()
    with runtime.db.scope() as session:
        runs = list(session.scalars(select(Run).order_by(Run.id)))
        assert len(runs) == 50 and {r.status for r in runs} == {"waiting"}
        start = utcnow() + timedelta(seconds=3)
        for i, run in enumerate(runs):  # due one after another, so that the kill falls among them
            run.wake_at = start + timedelta(milliseconds=60 * i)
    env = hub_env(database_url, tmp_path, worker__poll_seconds="0.02")
    first = start_hub(["worker"], env, tmp_path / "first.log")
    try:
        wait_for(lambda: sum(woken(runtime).values()) >= 5, 60, "the first wakes")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop(first)
    fired = sum(woken(runtime).values())
    assert fired < 50, "the kill should have left waits behind"
    second = start_hub(["worker"], env, tmp_path / "second.log")
    try:
        wait_for(lambda: sum(woken(runtime).values()) >= 50, 60, "every wait fired")
        wait_for(lambda: _completed(runtime) == 50, 30, "every run completed")
    finally:
        stop(second)
    counts = woken(runtime)
    assert len(counts) == 50 and set(counts.values()) == {1}, "each wait fired exactly once"


def _completed(runtime) -> int:
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(Run).where(Run.status == "completed"))
