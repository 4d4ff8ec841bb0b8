"""The webhook's one write statement must be compiled once, not on every webhook.

SQLAlchemy caches a statement's compiled form by its cache key; a statement without
one (a multi-row VALUES, for instance) is compiled again on every execution, which cost
about 2 ms of CPU per webhook."""
import pytest

from hub.channels.inbound_writes import _riding_writes
from hub.events.outbox import _riding_statement


@pytest.mark.parametrize("events", [1, 2, 3])
@pytest.mark.parametrize("columns", [(), ("last_message_at",), ("last_inbound_at", "last_message_at")])
@pytest.mark.parametrize("with_raw", [False, True])
def test_the_riding_statement_has_a_cache_key(events, columns, with_raw):
    statement = _riding_statement(_riding_writes(columns, with_raw=with_raw), events)
    assert statement._generate_cache_key() is not None


def test_the_riding_statement_inserts_every_event_with_its_own_parameters():
    from sqlalchemy.dialects import postgresql

    sql = str(_riding_statement(_riding_writes((), with_raw=False), 3).compile(dialect=postgresql.dialect()))
    for prefix in ("event_", "event1_", "event2_"):
        assert f"%({prefix}id)s" in sql
    assert sql.count("INSERT INTO events") == 3
