"""A message's timeline note is headed by its conversation's channel (the payload's
conversation.channel.kind), through the connector and in the mapping preview."""
from __future__ import annotations

import pytest

from connectors.amocrm import mapping
from connectors.base import HubEvent
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, instance, long_lived_settings

CHANNELS = [("whatsapp", "WhatsApp"), ("telegram", "Telegram"), ("instagram", "Instagram")]


def _message_event(n: int, kind: str | None, k: int = 0, direction: str = "in") -> HubEvent:
    conv = ev.conversation(n)
    if kind is not None:
        conv["channel"] = {**conv["channel"], "kind": kind}
    event_type = "message.received" if direction == "in" else "message.sent"
    return HubEvent(f"evt-note-{n}-{k}", event_type, 1, ev.T0,
                    {"conversation": conv, "contact": ev.contact(n), "message": ev.message(n, k, direction=direction)},
                    ordering_key=f"conversation:{conv['id']}")


@pytest.mark.parametrize("kind,label", CHANNELS)
def test_the_note_names_the_conversations_channel(runtime, amo, kind, label):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    outcomes = connector.deliver([_message_event(1, kind, 0, "in"), _message_event(1, kind, 1, "out")])
    assert [o.status for o in outcomes] == ["done", "done"]
    texts = sorted(n["params"]["text"] for n in amo.store.notes.values() if n["entity"] == "leads")
    assert texts[0].startswith(f"{label} #100010 ← Customer 1 · ")
    assert texts[1].startswith(f"{label} #100011 → Customer 1 (by Olga) · ")


@pytest.mark.parametrize("kind,label", CHANNELS)
def test_the_preview_and_a_service_message_name_it_too(runtime, amo, kind, label):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo, note_type="service_message")))
    (request,) = [r for r in connector.preview([_message_event(2, kind)]) if r["path"] == "/api/v4/leads/notes"]
    (body,) = request["body"]
    assert body["params"]["service"] == label
    assert body["params"]["text"].startswith(f"{label} #100020 ← Customer 2 · ")


def test_a_payload_without_a_channel_kind_is_whatsapp_and_an_unknown_kind_is_named():
    assert "kind" not in ev.conversation(3)["channel"]
    assert mapping.channel_label(ev.conversation(3)) == "WhatsApp"
    assert mapping.channel_label(None) == "WhatsApp"
    assert mapping.channel_label({"channel": {"kind": "viber"}}) == "Viber"
    assert mapping.note_text(ev.message(3, 0), ev.contact(3)).startswith("WhatsApp #100030 ← Customer 3 · ")
