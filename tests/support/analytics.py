"""Helpers for the analytics destinations' tests: events from fixtures, a connector on
an in-memory link store (tests/support/links.py), an HTTP session that records what
would be sent."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from connectors.base import ConnectorContext, HubEvent
from tests.support.links import MemoryLinks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Recording(requests.Session):
    """Answers every request with `status` (and `body`) and keeps what was sent."""

    def __init__(self, status: int = 204, body: bytes = b"", headers: dict[str, str] | None = None):
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []
        self.status, self.body, self.headers_ = status, body, headers or {}

    def send(self, prepared, **kwargs):  # type: ignore[override]
        self.sent.append(prepared)
        response = requests.Response()
        response.status_code, response._content, response.request = self.status, self.body, prepared
        response.headers.update(self.headers_)
        return response


def hub_event(spec: dict[str, Any], *, event_id: str = "evt-1") -> HubEvent:
    return HubEvent(id=spec.get("id", event_id), type=spec["type"], version=1,
                    occurred_at=datetime.fromisoformat(spec["occurred_at"].replace("Z", "+00:00")),
                    data=spec["data"], ordering_key=f"conversation:{spec['data']['conversation']['id']}")


def fixture(source: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / source / name).read_text())


def fixture_names(source: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES / source).glob("*.json"))


def connector(cls, settings: dict[str, Any], http: requests.Session, links: MemoryLinks | None = None,
              clock=None):
    from hub.platform.db import utcnow

    loaded = cls.Settings().load(settings)
    ctx = ConnectorContext(connector_id=7, name=cls.kind, settings=loaded, links=links or MemoryLinks(),
                           http=http, clock=clock or utcnow)
    return cls(ctx)


def lead_source(**overrides: Any) -> dict[str, Any]:
    from hub.tracking.attribution import empty_source

    return {**empty_source("tracked_link"), **overrides}
