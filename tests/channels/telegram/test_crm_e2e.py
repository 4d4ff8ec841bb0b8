"""Telegram to CRM, end to end: users write through the Bot API emulator (with repeated
updates), the hub ingests, workers deliver, and the amoCRM emulator holds one contact
and one deal per conversation and every message as a note: the connector needs nothing
Telegram-specific."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connectors.amocrm import benchkit as amo_kit
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Delivery, Message
from tests.support.telegram import wired

pytestmark = pytest.mark.slow


def test_50_telegram_conversations_land_in_amocrm(client, runtime):
    with amo_kit.start_emulator() as amo, wired(runtime, client) as w:
        with runtime.db.scope() as session:
            create_connector(session, runtime.vault, kind="amocrm", name="amo",
                             settings={**amo_kit.connector_settings(amo.base_url), "timeout_seconds": 5},
                             now=utcnow())
        emu, bot = w["emu"], w["bot"]
        users = [emu.user(bot, 800000 + i, f"Kunde{i}", username=f"kunde_{i}") for i in range(50)]
        for round_ in range(2):
            for user in users:
                user.send_text(f"question {round_} from {user.id}")
        assert emu.flush(duplicate=True) == 100
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == 100
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        for _ in range(100):
            if not worker.drain():
                break
        with runtime.db.scope() as session:
            statuses = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        assert statuses == {"done": 50 * 4}, statuses  # started, attributed, 2 messages each
        counts = amo.counts()
        assert {k: counts[k] for k in ("contacts", "deals", "notes")} == {"contacts": 50, "deals": 50, "notes": 100}
