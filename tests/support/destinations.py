"""The four analytics destinations for end-to-end tests: each emulator served and a
connector of each kind created against it."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from connectors.ga4 import emulator as ga4_emulator
from connectors.meta_capi import emulator as meta_emulator
from connectors.metrica import emulator as metrica_emulator
from connectors.roistat import emulator as roistat_emulator
from hub.crm.store import create_connector
from hub.platform.db import utcnow

METRICA_GOALS = ["first_message -> whatsapp_chat", "won -> deal_won = amount", "lost -> deal_lost"]


@contextlib.contextmanager
def analytics_destinations(runtime, **extra: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yields {"ga", "meta", "ym", "rs"}: the GA4, Meta, Metrica and Roistat emulators, each
    with its connector; `extra`, settings added per kind (ga4=, meta_capi=, metrica=, roistat=)."""
    with ga4_emulator.serve() as ga, meta_emulator.serve() as meta, metrica_emulator.serve() as ym, \
            roistat_emulator.serve() as rs:
        settings = {
            "ga4": {"measurement_id": "G-HUB0000001", "api_secret": "emulator-api-secret-1", "endpoint": ga.base_url},
            "meta_capi": {"dataset_id": "1234567890123", "access_token": meta.token,
                          "whatsapp_business_account_id": "1100000000000001", "graph_url": meta.base_url},
            "metrica": {"counter_id": 44147844, "oauth_token": ym.token, "api_url": ym.base_url,
                        "goals": METRICA_GOALS},
            "roistat": {"project": rs.project, "api_key": rs.key, "api_url": rs.base_url + "/api/v1"},
        }
        with runtime.db.scope() as session:
            for kind, values in settings.items():
                create_connector(session, runtime.vault, kind=kind, name=kind, now=utcnow(),
                                 settings={**values, **extra.get(kind, {})})
        yield {"ga": ga, "meta": meta, "ym": ym, "rs": rs}
