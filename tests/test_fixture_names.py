"""A fixture that is one webhook is named `<event>__<variant>.json`: the event the sender
names (WhatsApp's message type, `status` or the change's field; Telegram's update kind;
Instagram's messaging event or change field; a CRM's event name) and, after two
underscores, what this body shows of it. A reader finds every variant of an event by its
prefix, and a new fixture says what it is before it is opened.

Where the webhooks are:
- `tests/fixtures/whatsapp`, `telegram`, `instagram`: every file is the body of one webhook
  as the channel posts it.
- the connectors' folders (`amocrm`, `amocrm_amojo`, `bitrix24`, `hubspot`,
  `hubspot_inbox`) hold cases of many kinds (requests, answers, mappings, each with what
  is expected of it); among them, a file is one webhook when its content says so, as
  `ONE_WEBHOOK` below tests it. The other cases there, and the conversions' expected
  requests (`ga4`, `meta_capi`, `metrica`, `roistat`), are not webhooks and keep their names.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAME = re.compile(r"[A-Za-z0-9]+(?:[._][A-Za-z0-9]+)*__[a-z0-9]+(?:_[a-z0-9]+)*\.json")


def _every_file(case: Any) -> bool:
    return True


def _hubspot_events(case: Any) -> bool:
    events = case.get("input")
    return isinstance(events, list) and bool(events) and all("subscriptionType" in e for e in events)


def _bitrix24_event(case: Any) -> bool:
    return isinstance(case.get("body"), str) and case["body"].startswith("event=")


# folder -> does this file hold one webhook?
ONE_WEBHOOK: dict[str, Callable[[Any], bool]] = {
    "whatsapp": _every_file,
    "telegram": _every_file,
    "instagram": _every_file,
    "amocrm": lambda case: case.get("kind") == "webhook",
    "amocrm_amojo": lambda case: case.get("kind") == "hook",
    "bitrix24": _bitrix24_event,
    "hubspot": _hubspot_events,
    "hubspot_inbox": lambda case: "portalId" in case and "type" in case,
}
NOT_WEBHOOKS = {"ga4", "meta_capi", "metrica", "roistat"}


def webhook_fixtures(folder: str) -> list[Path]:
    holds_one = ONE_WEBHOOK[folder]
    return [p for p in sorted((FIXTURES / folder).glob("*.json")) if holds_one(json.loads(p.read_text()))]


def test_every_fixture_folder_is_sorted_into_webhooks_or_not():
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir() and any(p.glob("*.json"))}
    assert folders == set(ONE_WEBHOOK) | NOT_WEBHOOKS


@pytest.mark.parametrize("folder", sorted(ONE_WEBHOOK))
def test_a_webhook_fixture_is_named_event_then_variant(folder):
    found = webhook_fixtures(folder)
    assert found, f"no webhook fixture found in tests/fixtures/{folder}: is the test's rule for it still right?"
    misnamed = [p.name for p in found if not NAME.fullmatch(p.name)]
    assert misnamed == [], f"tests/fixtures/{folder}: name these <event>__<variant>.json: {misnamed}"


@pytest.mark.parametrize("name, ok", [
    ("text__plain.json", True), ("message_template_status_update__approved.json", True),
    ("deal.propertyChange__stage_changes.json", True), ("ONCRMDEALUPDATE__documented.json", True),
    ("text.json", False), ("status_read.json", False), ("text__.json", False), ("__plain.json", False),
    ("text__plain__again.json", False), ("text___plain.json", False), ("text__Plain.json", False),
])
def test_the_name_rule(name, ok):
    assert bool(NAME.fullmatch(name)) is ok
