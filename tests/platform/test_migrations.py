import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import hub.models  # noqa: F401
from hub.platform.db import Base, make_engine
from migrations.apply import current_revision, head_revision, upgrade
from alembic import command
from migrations.apply import alembic_config


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models differ from migrations: {diff}"
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    assert "deliveries" in inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_what_scenarios_stored_in_automation_profiles_moves_to_contact_tags_and_fields(tmp_path):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'p.db'}"
    command.upgrade(alembic_config(url), "0023")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO contacts (id, wa_id, name, created_at, updated_at) "
                          "VALUES (1, '4915100000001', 'Anna', '2026-12-01 10:00:00', '2026-12-01 10:00:00')"))
        conn.execute(text("INSERT INTO automation_profiles (contact_id, tags, fields, updated_at) VALUES "
                          "(1, '[\"lead\", \"vip\"]', '{\"city\": \"Berlin\", \"budget\": 5000, \"gone\": null}', "
                          "'2026-12-01 10:00:00')"))
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT tag FROM contact_tags ORDER BY tag")).scalars().all() == ["lead", "vip"]
        assert dict(conn.execute(text("SELECT name, value FROM contact_fields")).all()) == {
            "city": "Berlin", "budget": "5000"}
    assert "automation_profiles" not in inspect(engine).get_table_names()
    engine.dispose()
    command.downgrade(alembic_config(url), "0023")
    engine = make_engine(url)
    with engine.connect() as conn:
        tags, fields = conn.execute(text("SELECT tags, fields FROM automation_profiles")).one()
    engine.dispose()
    assert sorted(json.loads(tags)) == ["lead", "vip"] and json.loads(fields) == {"city": "Berlin", "budget": "5000"}
