"""Helpers for the automations tests: customers writing through the signed webhook, a
runner on a clock the test moves, scenarios published from documents."""
from __future__ import annotations

import json
from datetime import timedelta

from hub.automations import store
from hub.automations.runtime import Runner
from hub.platform.db import utcnow
from tests.support.clock import FakeClock
from tests.support.whatsapp import PHONE_NUMBER_ID, envelope, make_channel, post_signed

_counter = iter(range(1, 10**9))


def message_body(wa_id: str, text: str | None = None, *, reply: tuple[str, str] | None = None, at=None) -> bytes:
    at = at or utcnow()
    message = {"from": wa_id, "id": f"wamid.auto.{next(_counter)}", "timestamp": str(int(at.timestamp()))}
    if reply and reply[0].startswith("template:"):
        message.update(type="button", button={"payload": reply[0].split(":", 1)[1], "text": reply[1]})
    elif reply:
        message.update(type="interactive", interactive={"type": "button_reply",
                                                        "button_reply": {"id": reply[0], "title": reply[1]}})
    else:
        message.update(type="text", text={"body": text})
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111",
                                                           "phone_number_id": PHONE_NUMBER_ID},
             "contacts": [{"profile": {"name": f"Customer {wa_id[-3:]}"}, "wa_id": wa_id}], "messages": [message]}
    return envelope(value)


class Hub:
    """A channel, a client that posts customers' messages, and a runner."""

    def __init__(self, runtime, client, http=None):
        self.runtime, self.client = runtime, client
        self.channel_id, self.key = make_channel(runtime)
        self.clock = FakeClock(utcnow() + timedelta(seconds=5))
        self.runner = Runner(runtime, clock=self.clock, http=http)

    def say(self, wa_id: str, text: str | None = None, reply: tuple[str, str] | None = None) -> None:
        response = post_signed(self.client, self.key, message_body(wa_id, text, reply=reply))
        assert response.status_code == 200, response.data

    def work(self, seconds: float = 2) -> int:
        """Move the clock past the settle time and run the automations until idle."""
        self.clock.advance(seconds)
        total = 0
        for _ in range(50):
            handled = self.runner.run_once()
            if not handled:
                return total
            total += handled
        raise AssertionError("the runner never went idle")

    def publish(self, document: dict) -> int:
        with self.runtime.db.scope() as session:
            scenario = store.create(session, json.loads(json.dumps(document)), now=self.clock())
            store.publish(session, scenario, now=self.clock() - timedelta(seconds=30))
            return scenario.id
