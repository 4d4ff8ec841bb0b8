"""The channel contract (hub/channels/base.py) and WhatsApp on it: what callers above the
channels see of a channel, with no behaviour change against the WhatsApp modules."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from hub.channels import registry
from hub.channels.base import ChannelKind, Inbound, Outgoing, SendRefused, WindowClosed, WindowState
from hub.channels.sending import queue
from hub.channels.whatsapp.outbound import window
from hub.channels.whatsapp.kind import WhatsApp
from hub.channels.meta_signature import sign_meta
from hub.models import Message

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


@dataclass
class Conv:
    last_inbound_at: datetime | None


@dataclass
class WebhookChannelStub:
    provider: str
    app_secret: str = "s3cret"
    webhook_token: str = ""


def test_every_registered_kind_fills_the_contract():
    assert {"whatsapp", "telegram"} <= set(registry.names())
    for kind in registry.every():
        assert isinstance(kind, ChannelKind)
        assert kind.kind and kind.title and kind.source and kind.emulator
        assert kind.capabilities.kinds, "a channel sends something"
        assert kind.capabilities.media <= kind.capabilities.kinds


def test_a_row_without_a_kind_is_whatsapp_and_an_unknown_kind_is_named():
    assert isinstance(registry.of(object()), WhatsApp)
    with pytest.raises(LookupError, match="no channel kind 'fax'"):
        registry.get("fax")


def test_whatsapp_capabilities():
    caps = WhatsApp.capabilities
    assert (caps.buttons, caps.list_rows, caps.templates) == (3, 10, True)
    assert caps.supports("interactive") and caps.supports("template") and not caps.supports("poll")
    assert caps.media == {"image", "audio", "video", "document", "sticker"}


def test_a_template_is_read_through_its_kind():
    from hub.models import Template

    positional = Template(name="order", language="en", parameter_format="POSITIONAL", components=[
        {"type": "HEADER", "format": "TEXT", "text": "Order"}, {"type": "BODY", "text": "Hi {{1}}, order {{2}} is {{1}}"}])
    named = Template(name="promo", language="en", parameter_format="NAMED",
                     components=[{"type": "body", "text": "Hi {{first_name}}, take {{ code }}"}])
    assert WhatsApp().template_variables(positional) == 2
    assert WhatsApp().template_text(positional) == "Hi {{1}}, order {{2}} is {{1}}"
    assert WhatsApp().template_variables(named) == ["first_name", "code"]
    telegram = registry.get("telegram")
    assert not telegram.capabilities.templates
    assert (telegram.template_variables(positional), telegram.template_text(positional)) == (0, "")


@pytest.mark.parametrize("last, now_open", [(None, False), (NOW - timedelta(hours=23), True),
                                             (NOW - timedelta(hours=24), False)])
def test_window_is_the_24_hour_rule(last, now_open):
    state = WhatsApp().window(Conv(last), NOW)
    assert state.applies and state.after_close == "template"
    assert state.open is now_open is window.is_open(Conv(last), NOW)
    assert state.closes_at == window.closes_at(Conv(last))
    assert state.closing_soon is window.closing_soon(Conv(last), NOW, timedelta(hours=2))


def test_no_window_reads_as_always_open():
    assert WindowState.none() == WindowState(applies=False, open=True)


def test_authentic_meta_signature_and_360dialog_token():
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    kind = WhatsApp()
    meta = WebhookChannelStub("cloud")
    assert kind.authentic(meta, Inbound({"X-Hub-Signature-256": sign_meta("s3cret", body)}, body))
    assert not kind.authentic(meta, Inbound({"X-Hub-Signature-256": sign_meta("other", body)}, body))
    relay = WebhookChannelStub("360dialog", webhook_token="tok")
    assert kind.authentic(relay, Inbound({"X-Hub-Token": "tok"}, body))
    assert not kind.authentic(relay, Inbound({"X-Hub-Token": "nope"}, body))
    assert not kind.authentic(WebhookChannelStub("360dialog"), Inbound({"X-Hub-Token": ""}, body))


def test_the_360dialog_header_follows_the_config(config):
    kind = registry.get("whatsapp", config.replace(whatsapp__d360_webhook_header="X-Relay"))
    relay = WebhookChannelStub("360dialog", webhook_token="tok")
    assert kind.authentic(relay, Inbound({"X-Relay": "tok"}, b"{}"))


def test_queue_goes_through_the_conversations_channel(runtime, client):
    from tests.support.whatsapp import fixture, make_channel, post_signed

    _, key = make_channel(runtime)
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    with runtime.db.scope() as session:
        conversation_id = session.query(Message).one().conversation_id
        last = session.query(Message).one().sent_at
    with runtime.db.scope() as session:
        message = queue(session, Outgoing(kind="text", content={"body": "hello"}, conversation_id=conversation_id),
                        now=last + timedelta(hours=1))
        assert message.status == "queued" and message.request["to"]
    with pytest.raises(WindowClosed) as closed:
        with runtime.db.scope() as session:
            queue(session, Outgoing(kind="text", content={"body": "late"}, conversation_id=conversation_id),
                  now=last + timedelta(hours=25))
    assert closed.value.status == 409 and closed.value.code == "window_closed"
    with pytest.raises(SendRefused) as missing:
        with runtime.db.scope() as session:
            queue(session, Outgoing(kind="text", content={"body": "x"}, conversation_id=999999), now=NOW)
    assert missing.value.status == 404


def test_workers_get_each_kinds_background_work(runtime):
    from hub.processes import make_worker

    worker = make_worker(runtime)
    names = [getattr(source, "__qualname__", "") for source in worker.sources]
    assert any(name.startswith("Sender.") for name in names) and any(name.startswith("TemplateSyncer.") for name in names)


def test_each_kind_keeps_its_own_webhook_copies_and_says_whether_it_has_a_handshake(runtime):
    from hub.channels.webhook_cache import WebhookCache

    kinds = {kind.kind: kind for kind in registry.every(runtime.config)}
    caches = {name: kind.webhook_cache(runtime.vault) for name, kind in kinds.items()}
    assert all(isinstance(cache, WebhookCache) for cache in caches.values())
    assert len({id(cache) for cache in caches.values()}) == len(caches)
    assert kinds["telegram"].verify_webhook(runtime, "any-key", {"hub.mode": "subscribe"}) is None
    for name in ("whatsapp", "instagram"):  # Meta's handshake: an unknown key names no channel
        assert kinds[name].verify_webhook(runtime, "no-such-key", {"hub.mode": "subscribe"}).status == 404


def test_a_kind_without_templates_lists_none_and_window_lengths_are_the_kinds(runtime):
    with runtime.db.scope() as session:
        for kind in registry.every(runtime.config):
            if not kind.capabilities.templates:
                assert kind.usable_templates(session, object()) == []
    assert WhatsApp.capabilities.window_length == window.WINDOW
    assert registry.get("instagram").capabilities.window_length == timedelta(hours=24)
    assert not registry.get("telegram").capabilities.window


def test_a_webhook_route_serves_only_the_registered_kinds_and_a_get_only_where_there_is_a_handshake(client):
    assert client.post("/webhooks/fax/some-key", data=b"{}").status_code == 404
    assert client.get("/webhooks/telegram/some-key").status_code == 405
    assert client.get("/webhooks/whatsapp/some-key").status_code == 404
    assert client.get("/webhooks/instagram/" + "k" * 65).status_code == 404
