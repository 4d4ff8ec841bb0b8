"""Processes refreshing one CRM connector's OAuth token at the same moment, for the
connectors' test_oauth: each is one "worker" that needs its CRM at a given time.

    python -m tests.support.refresh_process <crm> <database_url> <encryption_key> <connector_id> <start_at>

Prints what it read of the CRM account (amoCRM: the subdomain; HubSpot: the portal id),
after renewing the token if it had to, and how many token exchanges this process made.
"""
from __future__ import annotations

import subprocess
import sys
import time
from typing import Any, Callable

from hub.crm.store import build_connector
from hub.models import ConnectorRecord
from hub.platform.config import load_config
from hub.platform.db import utcnow
from hub.platform.runtime import Runtime
from tests.support.paths import ROOT

READ: dict[str, Callable[[Any], Any]] = {
    "amocrm": lambda connector: connector.client.get("/api/v4/account")["subdomain"],
    "hubspot": lambda connector: connector.admin_client.account_details()["portalId"],
}


def run_at_once(crm: str, runtime: Runtime, encryption_key: str, connector_id: int, *, processes: int = 4,
                delay: float = 3.0) -> list[list[str]]:
    """Start `processes` of them together `delay` seconds from now; the words each printed
    (all must have exited cleanly)."""
    start_at = time.time() + delay
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.support.refresh_process", crm, runtime.config.database_url,
         encryption_key, str(connector_id), str(start_at)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    return [o[0].split() for o in outputs]


def main() -> None:
    crm, url, key = sys.argv[1], sys.argv[2], sys.argv[3]
    connector_id, start_at = int(sys.argv[4]), float(sys.argv[5])
    runtime = Runtime.from_config(load_config(data={"database_url": url, "encryption_keys": key}, environ={}))
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=10)
    time.sleep(max(0.0, start_at - time.time()))
    print(READ[crm](connector), connector.tokens.renewals)


if __name__ == "__main__":
    main()
