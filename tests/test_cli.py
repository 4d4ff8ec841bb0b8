"""The `hub` command."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from hub.cli import cli
from hub.platform.db import utcnow
from hub.events.outbox import emit
from hub.events.raw_webhooks import PayloadError, Processor, register_processor
from hub.models import ConnectorRecord, Delivery, RawWebhook, User
from tests.support.factories import SECRET, webhook_connector
from tests.support.processes import hub_env


@pytest.fixture
def run(database_url, tmp_path):
    env = hub_env(database_url, tmp_path)

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, list(args), obj={}, env=env, input=input, catch_exceptions=False)

    return invoke


def test_invalid_config_stops_with_the_key_named(tmp_path):
    bad = tmp_path / "hub.toml"
    bad.write_text("[worker]\nbatch_size = 'lots'\n")
    proc = subprocess.run([sys.executable, "-m", "hub", "--config", str(bad), "migrate"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "worker.batch_size: Not a valid integer." in proc.stderr


def test_production_without_key_refuses_and_writes_nothing(tmp_path):
    env = {"HUB_MODE": "production", "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/h.db",
           "HUB_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "hub", "migrate"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "encryption_keys: missing" in proc.stderr
    assert not (tmp_path / "h.db").exists() and not (tmp_path / "data").exists()


def test_keygen_prints_a_fernet_key(run):
    key = run("keygen").output.strip()
    Fernet(key.encode())


def test_user_and_token(run, runtime):
    r = run("user", "create", "--email", "Ana@Example.com", "--role", "admin", "--password", "long enough pw")
    assert r.exit_code == 0 and "created admin ana@example.com" in r.output
    r = run("user", "create", "--email", "ana@example.com", "--password", "long enough pw")
    assert r.exit_code == 1 and "already exists" in r.output
    r = run("user", "create", "--email", "b@example.com", "--password", "short")
    assert r.exit_code == 1 and "at least 10 characters" in r.output
    token = run("token", "create", "--email", "ana@example.com", "--name", "ci").output.strip()
    assert token.startswith("hub_")
    listing = run("token", "list").output
    assert token[:10] in listing and token not in listing
    assert run("token", "revoke", "1").exit_code == 0
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_connector_add_validates_and_checks(run, runtime):
    r = run("connector", "add", "--kind", "webhook", "--name", "x", "--set", "url=notaurl", "--set", "secret=short")
    assert r.exit_code == 1 and "url" in r.output and "secret" in r.output
    r = run("connector", "add", "--kind", "nope", "--name", "x")
    assert r.exit_code == 1 and "unknown connector kind 'nope'" in r.output
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(ConnectorRecord)) == 0
    r = run("connector", "add", "--kind", "webhook", "--name", "app", "--set", "url=http://127.0.0.1:1/",
            "--set", f"secret={SECRET}", "--events", "message.received,conversation.closed")
    assert r.exit_code == 0, r.output
    assert "app" in run("connector", "list").output
    assert "webhook: Generic webhook" in run("connector", "kinds").output
    r = run("connector", "check", "1")
    assert r.exit_code == 1 and "FAILED" in r.output and "connection failed" in r.output


def test_deliveries_list_show_replay(run, runtime):
    webhook_connector(runtime, "http://127.0.0.1:1/")
    with runtime.db.scope() as session:
        emit(session, "message.received", {"text": "hi"}, now=utcnow())
        session.flush()
        d = session.scalars(select(Delivery)).one()
        d.status, d.last_error = "dead", "HTTP 410: the receiver refused the event"
    out = run("deliveries", "list", "--status", "dead").output
    assert "HTTP 410" in out and "message.received" in out
    assert '"text": "hi"' in run("deliveries", "show", "1").output
    assert run("deliveries", "show", "99").exit_code == 1
    assert run("deliveries", "replay").exit_code == 2
    assert "replayed 1" in run("deliveries", "replay", "--all-dead").output
    with runtime.db.scope() as session:
        assert session.scalars(select(Delivery)).one().status == "pending"


def test_webhooks_replay_reprocesses_failed_bodies(run, runtime):
    fixed = {"yes": False}

    def parse(body):
        if not fixed["yes"]:
            raise PayloadError("missing field 'entry'")
        return body

    register_processor("test-source", Processor(parse=parse, apply=lambda *args: None))
    with runtime.db.scope() as session:
        session.add(RawWebhook(source="test-source", received_at=utcnow(), headers={}, body=b"{}",
                               status="failed", error="missing field 'entry'"))
    assert "missing field" in run("webhooks", "list", "--failed").output
    assert "processed 0, still failing 1" in run("webhooks", "replay").output
    fixed["yes"] = True
    assert "processed 1, still failing 0" in run("webhooks", "replay").output
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.status == "processed" and raw.attempts == 3 and raw.error is None


def test_serve_says_where_to_go_first(runtime):
    from hub.processes import welcome
    from tests.support.admin import make_user

    assert "the first visit creates the admin account" in welcome(runtime)[1]
    make_user(runtime, "admin")
    assert welcome(runtime)[1].endswith("in a browser: sign in")


def test_routing_recount_fixes_a_wrong_counter(run, runtime):
    from hub.models import OperatorState
    from hub.models.users import create_user

    with runtime.db.scope() as session:
        user_id = create_user(session, email="ana@example.com", password="correct horse battery", role="operator",
                              now=utcnow()).id
        session.add(OperatorState(user_id=user_id, presence="offline", capacity=5, open_chats=4))
    out = run("routing", "recount").output
    assert f"user {user_id}: 0 open conversation(s)" in out and "fixed 1 counter(s)" in out
    assert "fixed 0 counter(s)" in run("routing", "recount").output
    with runtime.db.scope() as session:
        assert session.get(OperatorState, user_id).open_chats == 0
