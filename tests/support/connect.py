"""The Connect button's round trip in tests: the browser at the service's authorization
page, and what the callback stored."""
from __future__ import annotations

from typing import Any

import requests

from hub.crm.store import full_settings
from hub.models import ConnectorRecord

BASE_URL = "http://localhost:8000"  # HubSpot takes http redirect URLs for localhost only
CALLBACK = BASE_URL + "/admin/connectors/oauth/callback"


def authorize_in_browser(location: str) -> str:
    """Open the service's authorization page (the emulated user allows at once) and
    return the path of the hub callback it sends the browser back to."""
    answer = requests.get(location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(CALLBACK + "?"), back
    return back.removeprefix(BASE_URL)


def stored(runtime, connector_id: int) -> tuple[dict[str, Any], str]:
    """The connector's settings (secrets decrypted) and its health."""
    with runtime.db.scope() as s:
        record = s.get(ConnectorRecord, connector_id)
        return full_settings(record, runtime.vault), record.health
