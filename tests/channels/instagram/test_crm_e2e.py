"""Instagram to CRM, end to end: 200 customers write through the Graph API emulator
(every webhook delivered twice, as Meta does), the hub ingests, workers deliver, and the
amoCRM emulator holds one contact and one deal per conversation and every message as a
note: the connector needs nothing Instagram-specific."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connectors.amocrm import benchkit as amo_kit
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Delivery, Message
from tests.support.instagram import wired

pytestmark = pytest.mark.slow
CUSTOMERS = 200


def test_200_instagram_conversations_land_in_amocrm(client, runtime):
    with amo_kit.start_emulator() as amo, wired(runtime, client) as w:
        with runtime.db.scope() as session:
            create_connector(session, runtime.vault, kind="amocrm", name="amo",
                             settings={**amo_kit.connector_settings(amo.base_url), "timeout_seconds": 5},
                             now=utcnow())
        emu, account = w["emu"], w["account"]
        customers = [emu.customer(account, str(6100000000000000 + i)) for i in range(CUSTOMERS)]
        for round_ in range(2):
            for customer in customers:
                customer.send_text(f"question {round_} from {customer.id}")
        assert emu.flush(duplicate=True) == 2 * CUSTOMERS
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == 2 * CUSTOMERS
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        for _ in range(200):
            if not worker.drain():
                break
        with runtime.db.scope() as session:
            statuses = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        assert statuses == {"done": CUSTOMERS * 4}, statuses  # started, attributed, 2 messages each
        counts = amo.counts()
        assert {k: counts[k] for k in ("contacts", "deals", "notes")} == \
            {"contacts": CUSTOMERS, "deals": CUSTOMERS, "notes": 2 * CUSTOMERS}
