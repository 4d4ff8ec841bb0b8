"""Alembic environment: the URL comes from the hub's own configuration."""
from __future__ import annotations

from alembic import context

import hub.models  # noqa: F401  (registers every table on Base.metadata)
from hub.platform.config import load_config
from hub.platform.db import Base, JSONType, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or load_config().database_url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=_url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _render_item(type_, obj, autogen_context):
    """Render the hub's own column types by name in generated revisions."""
    if type_ == "type" and obj is JSONType:
        autogen_context.imports.add("import hub.platform.db")
        return "hub.platform.db.JSONType"
    return False


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
