"""Open Lines mode with a worker SIGKILLed after the portal took an
imconnector.send.messages call but before its answer came back: another worker takes over,
finds those messages in their chats (CONNECTOR_MID) instead of sending them again, and
every message is in its chat exactly once. Both databases.

In the first test the chats exist when the kill comes; in the second the kill comes on
the first messages of contacts never answered for: the chats are found among the line's
sessions (imopenlines.v2.Session.list), so each conversation still has one chat holding
each message once."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.crm.worker import Worker
from hub.platform.runtime import Runtime
from tests.conftest import make_config
from tests.connectors.bitrix24.test_chaos import _worker_env, drain_until_settled
from tests.connectors.bitrix24.test_openlines import emit_messages, set_up

CONVERSATIONS, PER = 30, 3


@pytest.mark.slow
def test_worker_killed_while_the_portal_answers_then_another_drains_exactly_once(database_url, tmp_path, portal):
    runtime = Runtime.from_config(make_config(database_url, tmp_path, worker__lease_seconds=2))
    try:
        set_up(runtime, portal)
        p = portal.portal
        customer = lambda: sum(1 for m in p.ol.messages.values() if m["author"] == "customer")  # noqa: E731
        first = emit_messages(runtime, CONVERSATIONS, 1)
        assert drain_until_settled(runtime, Worker(runtime.db, runtime.vault, runtime.config), first) == {
            "done": first}
        total = first + emit_later_messages(runtime, CONVERSATIONS, range(2, PER + 1))
        # Those messages are in Bitrix24; the worker never hears back.
        posted = kill_a_worker_once_the_portal_posted(database_url, tmp_path, p, customer) - first
        assert 0 < posted < total - first, "the kill came too late to mean anything"
        result = drain_until_settled(runtime, Worker(runtime.db, runtime.vault, runtime.config), total)
        assert result == {"done": total}
        assert len(p.ol.chats) == CONVERSATIONS
        assert customer() == total
        mids = [m["params"]["CONNECTOR_MID"][0] for m in p.ol.messages.values() if m["author"] == "customer"]
        assert len(set(mids)) == total
        for i in range(CONVERSATIONS):
            room = p.ol.chats[("whatsapp_hub", 1, str(5000 + i))]
            assert [p.ol.messages[m]["text"] for m in room["messages"]] == [
                f"Message {n} of conversation {i}" for n in range(1, PER + 1)]
        assert p.stats["methods"].get("im.dialog.messages.get", 0) >= 1  # the takeover looked before sending
    finally:
        runtime.db.dispose()


@pytest.mark.slow
def test_worker_killed_on_new_contacts_first_messages_leaves_one_chat_each(database_url, tmp_path, portal):
    runtime = Runtime.from_config(make_config(database_url, tmp_path, worker__lease_seconds=2))
    try:
        set_up(runtime, portal)
        p = portal.portal
        customer = lambda: sum(1 for m in p.ol.messages.values() if m["author"] == "customer")  # noqa: E731
        total = emit_messages(runtime, CONVERSATIONS, 2)
        # Bitrix24 opened the chats and posted the first messages; the hub never learnt the chats' ids.
        assert kill_a_worker_once_the_portal_posted(database_url, tmp_path, p, customer) == CONVERSATIONS
        assert len(p.ol.chats) == CONVERSATIONS
        result = drain_until_settled(runtime, Worker(runtime.db, runtime.vault, runtime.config), total)
        assert result == {"done": total}
        assert len(p.ol.chats) == CONVERSATIONS
        assert customer() == total
        for i in range(CONVERSATIONS):
            room = p.ol.chats[("whatsapp_hub", 1, str(5000 + i))]
            assert [p.ol.messages[m]["text"] for m in room["messages"]] == [
                f"Message {n} of conversation {i}" for n in (1, 2)]
        assert p.stats["methods"].get("imopenlines.v2.session.list", 0) >= 1
        assert p.stats["methods"]["imconnector.send.messages"] == 2  # the killed wave, then the second
    finally:
        runtime.db.dispose()


def kill_a_worker_once_the_portal_posted(database_url, tmp_path, p, customer) -> int:
    """A `hub worker` process SIGKILLed while the portal, which has done the work, holds
    its answer back; -> the customer messages in the portal then. Returns once the dead
    worker's lease (2 s) has run out."""
    before = customer()
    p.chaos.slow_next.extend([3.0] * 3)
    proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=_worker_env(database_url, tmp_path),
                            cwd=str(Path(__file__).resolve().parents[3]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while customer() == before and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.005)
        posted = customer()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    p.chaos.slow_next.clear()
    time.sleep(2.1)
    return posted


def emit_later_messages(runtime, conversations: int, numbers) -> int:
    from hub.platform.db import utcnow
    from hub.events.outbox import emit
    from tests.connectors.bitrix24 import factory

    count = 0
    with runtime.db.scope() as session:
        for n in numbers:
            for i in range(conversations):
                emit(session, "message.received", factory.data("message.received", i, n=n), now=utcnow(),
                     ordering_key=f"conversation:{5000 + i}")
                count += 1
    return count
