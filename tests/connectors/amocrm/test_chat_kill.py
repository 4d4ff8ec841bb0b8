"""Chat mode with a worker SIGKILLed after amojo kept a message but before its answer
came back: another worker takes over and every message is in its chat exactly once
(the retry names the same msgid). Both databases."""
from __future__ import annotations

import signal
import time

import pytest

from connectors.amocrm.chat import conversation_ref
from connectors.amocrm.emulator import serve
from connectors.amocrm.emulator_amojo import serve_amojo
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, dead_errors, drain, instance
from tests.connectors.amocrm.test_chat import chat_settings
from tests.connectors.amocrm.test_chaos import start_worker

CONVERSATIONS = 20


@pytest.mark.slow
def test_worker_killed_while_amojo_answers_then_another_drains_exactly_once(runtime, tmp_path):
    with serve() as amo, serve_amojo() as amojo:
        cid = add_connector(runtime, chat_settings(amo, amojo))
        assert instance(runtime, cid).check().ok
        with runtime.db.scope() as session:
            for n in range(CONVERSATIONS):
                ev.emit_conversation(session, n, messages=2)  # one from the customer, one from the hub
        emu = amojo.emulator
        emu.answer_delay = 0.5  # amojo keeps each message, then answers late
        worker = start_worker(runtime, tmp_path)
        try:
            deadline = time.monotonic() + 60
            while len(emu.messages) < 3 and time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise AssertionError(f"worker exited early: {worker.stderr.read().decode()[-2000:]}")
                time.sleep(0.005)
            kept = len(emu.messages)
            worker.send_signal(signal.SIGKILL)  # the third message is kept; its answer never arrives
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert worker.returncode == -signal.SIGKILL
        assert 3 <= kept < 2 * CONVERSATIONS, "the kill came too late to mean anything"
        emu.answer_delay = 0.0
        result = drain(runtime, deadline=120)
        assert result == {"done": 3 * CONVERSATIONS}, dead_errors(runtime)[:3]
        assert emu.stats["repeated_msgid"] >= 1  # the takeover posted the killed try's msgid again
        assert len(emu.chats) == CONVERSATIONS and len(emu.messages) == 2 * CONVERSATIONS
        for n in range(CONVERSATIONS):
            texts = [m["text"] for m in emu.messages_of(conversation_ref(500 + n))]
            assert texts == [f"Message 0 of conversation {n}", f"Message 1 of conversation {n}"]
        assert emu.stats["rate_limited"] == 0
