"""The shared benchmark driver's hooks."""
from __future__ import annotations

import requests

from connectors.hubspot import benchkit
from connectors.hubspot.settings import HubSpotSettings


def test_floor_counts_batches_of_100_and_the_phone_searches_at_the_rate_limit():
    # 20 searches + 20 contact + 20 deal + 60 communication batches
    assert benchkit.floor(2000, 3) == (120, 12.0)
    assert benchkit.floor(150, 1) == (8, 0.8)
    assert benchkit.KIND == "hubspot"


def test_emulator_handle_and_settings_fit_together():
    with benchkit.start_emulator() as emu:
        settings = HubSpotSettings().load(benchkit.connector_settings(emu.base_url))
        assert settings["rate_limit_per_10s"] == emu.state.options.per_10_seconds
        answer = requests.get(emu.base_url + "/crm/v3/properties/contacts/hub_whatsapp_id",
                              headers={"Authorization": f"Bearer {settings['access_token']}"}, timeout=5)
        assert answer.status_code == 200 and answer.json()["hasUniqueValue"] is True
        assert emu.counts() == {"contacts": 0, "deals": 0, "notes": 0}
        stats = emu.stats()
        assert stats["requests"] == 1 and stats["rate_limited"] == 0
