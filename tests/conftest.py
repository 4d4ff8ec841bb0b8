"""Fixtures: a migrated database on SQLite (default) or PostgreSQL (HUB_TEST_DB=postgres,
at HUB_TEST_POSTGRES_URL), a runtime, the Flask app and API tokens."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.platform.config import load_config
from hub.platform.db import Base, utcnow
from migrations.apply import head_revision, upgrade
from hub.platform.runtime import Runtime
from hub.wiring import install_reactions

install_reactions()  # as every hub process does: tests call ingest and sending directly too

BACKEND = os.environ.get("HUB_TEST_DB", "sqlite")
POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ENCRYPTION_KEY = Fernet.generate_key().decode()


def pytest_report_header(config):
    return f"hub test database: {BACKEND}"


class TestDatabase:
    """A migrated database for the session, reset between tests."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        if BACKEND == "postgres":
            base = make_url(POSTGRES_URL)
            self.name = f"hub_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            self._admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = base.set(database=self.name).render_as_string(hide_password=False)
            upgrade(self.url)
            self._engine = create_engine(self.url)
        elif BACKEND == "sqlite":
            self.template = tmp / "template.db"
            upgrade(f"sqlite:///{self.template}")
            self.url = ""
        else:
            raise RuntimeError(f"HUB_TEST_DB must be sqlite or postgres, not {BACKEND!r}")

    def fresh_url(self, test_dir: Path) -> str:
        if BACKEND == "postgres":
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with self._engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                # A test may have moved the schema version (readiness checks): put it back.
                conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})
            return self.url
        path = test_dir / "hub.db"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"

    def close(self) -> None:
        if BACKEND == "postgres":
            self._engine.dispose()
            with self._admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self._admin.dispose()


@pytest.fixture(scope="session")
def test_database(tmp_path_factory) -> Iterator[TestDatabase]:
    db = TestDatabase(tmp_path_factory.mktemp("db"))
    yield db
    db.close()


@pytest.fixture
def database_url(test_database, tmp_path) -> str:
    return test_database.fresh_url(tmp_path)


def make_config(database_url: str, tmp_path: Path, **overrides):
    data = {
        "database_url": database_url,
        "data_dir": str(tmp_path / "data"),
        "encryption_keys": ENCRYPTION_KEY,
        "secret_key": "test-secret-key",
        "base_url": "http://hub.test",
        "worker": {"batch_size": 50, "lease_seconds": 30, "poll_seconds": 0.05},
        "delivery": {"max_age_seconds": 3600, "backoff_base_seconds": 1, "backoff_max_seconds": 60,
                     "http_timeout_seconds": 5},
        "scheduler": {"lease_seconds": 2},
    }
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return load_config(data=data, environ={})


@pytest.fixture
def config(database_url, tmp_path):
    return make_config(database_url, tmp_path)


@pytest.fixture
def runtime(config) -> Iterator[Runtime]:
    rt = Runtime.from_config(config)
    yield rt
    rt.db.dispose()


@pytest.fixture
def app(runtime):
    from hub.app import create_app

    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


def _token(runtime: Runtime, role: str) -> str:
    from hub.models.users import create_api_token, create_user

    email = f"{role}@example.com"
    with runtime.db.scope() as session:
        create_user(session, email=email, password="correct horse battery", role=role, now=utcnow())
        return create_api_token(session, email=email, name="tests", now=utcnow())


@pytest.fixture
def admin_headers(runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(runtime, 'admin')}"}


@pytest.fixture
def viewer_headers(runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(runtime, 'viewer')}"}
