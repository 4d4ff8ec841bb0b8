"""Without a ping before every checkout (hub.platform.db.make_engine), a connection the server
dropped fails one statement; the pool then drops its stale connections and the hub goes
on with fresh ones, webhooks included."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from hub.models import Message
from tests.conftest import BACKEND
from tests.support.whatsapp import fixture, make_channel, post_signed

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="a server that drops connections: PostgreSQL")


def _drop_pooled_connections(runtime) -> None:
    """What a database restart does to the hub's idle pooled connections."""
    with runtime.db.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = create_engine(runtime.config.database_url)
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    killer.dispose()


def test_a_dropped_connection_fails_once_then_the_hub_reconnects(app, runtime):
    _, key = make_channel(runtime)
    client = app.test_client()
    _drop_pooled_connections(runtime)
    with pytest.raises(DBAPIError) as exc:
        with runtime.db.scope() as session:
            session.execute(select(1))
    assert exc.value.connection_invalidated
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_webhook_on_a_dropped_connection_answers_500_and_its_retry_is_stored(app, runtime):
    _, key = make_channel(runtime)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not raise into the test
    client = app.test_client()
    _drop_pooled_connections(runtime)
    first = post_signed(client, key, fixture("text__plain"))
    assert first.status_code == 500  # Meta retries a webhook that was not answered 200
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
