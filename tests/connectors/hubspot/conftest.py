from __future__ import annotations

from typing import Iterator

import pytest

from connectors.hubspot import benchkit
from connectors.hubspot.emulator import EmulatorHandle
from hub.crm.store import create_connector
from hub.platform.db import utcnow


@pytest.fixture
def emu() -> Iterator[EmulatorHandle]:
    with benchkit.start_emulator(per_10_seconds=250) as handle:
        yield handle


def make_connector(runtime, emu: EmulatorHandle, *, name: str = "hubspot", **overrides) -> int:
    settings = {**benchkit.connector_settings(emu.base_url), "rate_limit_per_10s": emu.state.options.per_10_seconds,
                **overrides}
    with runtime.db.scope() as session:
        record = create_connector(session, runtime.vault, kind="hubspot", name=name, settings=settings,
                                  now=utcnow())
        return record.id
