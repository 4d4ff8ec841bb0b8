from __future__ import annotations

from typing import Any, Iterator

import pytest

from connectors.bitrix24 import emulator


@pytest.fixture
def portal() -> Iterator[emulator.EmulatorHandle]:
    with emulator.serve() as handle:
        yield handle


def webhook_settings(handle: emulator.EmulatorHandle, **overrides: Any) -> dict[str, Any]:
    settings = {"portal_url": handle.base_url, "auth_mode": "webhook", "webhook_url": handle.webhook_url,
                "application_token": handle.portal.application_token}
    settings.update(overrides)
    return settings


def oauth_settings(handle: emulator.EmulatorHandle, **overrides: Any) -> dict[str, Any]:
    p = handle.portal
    settings = {"portal_url": handle.base_url, "auth_mode": "oauth", "client_id": p.client_id,
                "client_secret": p.client_secret, "access_token": p.access_token, "refresh_token": p.refresh_token,
                "oauth_server_url": handle.base_url, "application_token": p.application_token}
    settings.update(overrides)
    return settings
