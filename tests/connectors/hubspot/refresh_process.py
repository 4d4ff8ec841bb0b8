"""Run as a separate process by test_oauth: one "worker" that needs HubSpot at a given time.

    python -m tests.connectors.hubspot.refresh_process <database_url> <encryption_key> <connector_id> <start_at>

Prints the portal id it read and how many token exchanges this process made.
"""
from __future__ import annotations

import sys
import time

from hub.platform.config import load_config
from hub.crm.store import build_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from hub.platform.runtime import Runtime


def main() -> None:
    url, key, connector_id, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    runtime = Runtime.from_config(load_config(data={"database_url": url, "encryption_keys": key}, environ={}))
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=10)
    time.sleep(max(0.0, start_at - time.time()))
    print(connector.admin_client.account_details()["portalId"], connector.tokens.renewals)


if __name__ == "__main__":
    main()
