"""The WhatsApp emulator wired to a hub under test (webhooks into the Flask test client,
the hub's API calls to the emulator over loopback HTTP)."""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

from hub.channels.whatsapp.emulator import WhatsAppEmulator
from hub.channels.whatsapp.emulator.driver import FlaskClientTransport, WebhookDriver
from hub.channels.whatsapp.outbound.sender import Sender
from hub.channels.whatsapp.templates.sync import TemplateSyncer
from hub.crm.worker import Worker
from tests.support.whatsapp import APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN, WABA_ID, make_channel

TOKEN = "EAAG-e2e-token"


@contextlib.contextmanager
def wired(runtime, client, clock, *, provider: str = "cloud", **driver_options) -> Iterator[dict]:
    driver = WebhookDriver(clock=clock, transport=FlaskClientTransport(client), sleep=lambda s: None,
                           **driver_options)
    emu = WhatsAppEmulator(clock=clock, driver=driver)
    with emu.serve() as server:
        extra = {"access_token": TOKEN} if provider == "cloud" else {"d360_api_key": "d360-e2e-key"}
        channel_id, key = make_channel(runtime, provider=provider, api_base_url=server.base_url, **extra)
        number_args = dict(phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID, display_phone_number="15550001111",
                           verify_token=VERIFY_TOKEN, webhook_url=f"http://hub.test/webhooks/whatsapp/{key}")
        if provider == "cloud":
            number = emu.add_number(token=TOKEN, app_secret=APP_SECRET, **number_args)
        else:
            number = emu.add_number(provider="360dialog", d360_key="d360-e2e-key",
                                    webhook_headers={"X-Hub-Token": "d360-webhook-token"}, **number_args)
        yield {"emu": emu, "server": server, "number": number, "channel_id": channel_id, "key": key}


def worker(runtime, clock=None) -> Worker:
    kwargs = {"clock": clock} if clock else {}
    sender = Sender(runtime, "test-worker", rng=random.Random(1), **kwargs)
    syncer = TemplateSyncer(runtime, **kwargs)
    return Worker(runtime.db, runtime.vault, runtime.config, owner="test-worker",
                  sources=[sender.run_once, syncer.run_once], **kwargs)
