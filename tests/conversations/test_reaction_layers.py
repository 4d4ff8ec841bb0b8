"""The lower rooms (ingest, sending, the conversation actions, a CRM's deal report) never
import routing, automations, broadcasts or reports: routing and automations react
through hub.conversations.reactions, broadcasts apply a customer's consent words through
hub.channels.customer_words, both installed by every process (the web app, the
workers, the scheduler, the CLI)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.channels import customer_words
from hub.conversations import reactions as conversation_reactions
from tests.support.paths import ROOT
from tests.support.processes import hub_env

HUB = ROOT / "hub"
LOWER = ["channels/sending.py", "channels/first_message.py", "channels/whatsapp/inbound/ingest.py",
         "channels/whatsapp/inbound/account_events.py", "channels/customer_words.py",
         "channels/telegram/ingest.py", "channels/instagram/ingest.py", "conversations/actions.py",
         "conversations/reactions.py", "conversations/consent.py", "crm/deal_outcomes.py", "routing/known.py"]
HIGHER = ("hub.routing", "hub.automations", "hub.broadcasts", "hub.reports", "hub.wiring")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("lower", LOWER)
def test_a_lower_room_imports_no_higher_one(lower):
    allowed = {"routing/known.py": ("hub.routing.known",)}.get(lower, ())
    upward = sorted(name for name in imported(HUB / lower)
                    if name.startswith(HIGHER) and not name.startswith(allowed))
    assert upward == [], f"{lower} imports {upward}"


def test_the_routing_engine_does_not_import_its_hooks():
    assert not any(name.startswith("hub.routing.hooks") for name in imported(HUB / "routing/engine.py"))


@pytest.fixture
def no_reactions(monkeypatch):
    for name in ("_started", "_replied", "_closed"):
        monkeypatch.setattr(conversation_reactions, name, [])


def installed() -> tuple[int, int, int]:
    return (len(conversation_reactions._started), len(conversation_reactions._replied),
            len(conversation_reactions._closed))


def test_the_web_app_installs_the_reactions(no_reactions, runtime):
    from hub.app import create_app

    create_app(runtime=runtime)
    assert installed() == (1, 2, 1)


def test_a_worker_installs_the_reactions_once(no_reactions, runtime):
    from hub.processes import make_worker

    make_worker(runtime)
    make_worker(runtime)
    assert installed() == (1, 2, 1)


def test_the_cli_installs_the_reactions(no_reactions, database_url, tmp_path):
    from hub.cli import cli

    result = CliRunner().invoke(cli, ["keygen"], obj={}, env=hub_env(database_url, tmp_path))
    assert result.exit_code == 0, result.output
    assert installed() == (1, 2, 1)


def test_a_process_without_them_says_so(no_reactions, caplog, runtime):
    with runtime.db.scope() as session:
        conversation_reactions.closed(session, None, now=None)
    assert "install_reactions" in caplog.text


@pytest.fixture
def no_consent_handling(monkeypatch):
    monkeypatch.setattr(customer_words, "_installed", [])
    monkeypatch.setattr(customer_words, "_warned", [])


def test_the_web_app_and_the_workers_install_the_consent_handling_once(no_consent_handling, runtime):
    from hub.app import create_app
    from hub.broadcasts import inbound
    from hub.processes import make_worker

    create_app(runtime=runtime)
    make_worker(runtime)
    make_worker(runtime)
    assert [h.customer_text for h in customer_words._installed] == [inbound.customer_text]
    assert customer_words.keyword_of("STOP", runtime.config) == "opted_out"


def test_a_process_without_the_consent_handling_reads_no_keyword_and_says_so(no_consent_handling, caplog, runtime):
    assert customer_words.keyword_of("STOP", runtime.config) is None
    assert "install_reactions" in caplog.text
