"""Inbox mode: one test per documented request/response body (tests/fixtures/hubspot_inbox)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from connectors import whatsapp_words
from connectors.base import SendText, WebhookRejected
from connectors.hubspot import inbox, inbox_hooks
from connectors.hubspot.client import ClientConfig, HubSpotClient, ValidationFailed
from connectors.hubspot.emulator import Options
from hub.platform.db import utcnow
from tests.connectors.hubspot import events as ev

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot_inbox"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def event_data(message: dict) -> dict:
    conv = ev.conversation(7)
    return {"conversation": conv, "contact": {**ev.contact(7), "phone": "+15550000007"}, "message": message}


def client(base_url: str) -> HubSpotClient:
    return HubSpotClient(ClientConfig(base_url=base_url, token=Options().token), requests.Session(), clock=utcnow)


def test_publish_body_of_an_incoming_text_is_the_documented_request():
    data = event_data({**ev.message(701), "timestamp": "2026-11-25T12:11:41Z"})
    assert inbox.publish_body(data, "12001", "+15550001111") == fixture("message_publish_incoming_request.json")


def test_media_goes_as_the_signed_link_in_the_text():
    media = {"id": "56", "mime_type": "image/jpeg", "filename": "sofa.jpg", "caption": None,
             "download_url": "https://hub.example.com/media/56?sig=3f9a"}
    message = {**ev.message(702, type_="image", text="the grey one", media=media), "timestamp": "2026-11-25T12:11:42Z"}
    assert inbox.publish_body(event_data(message), "12001", "+15550001111") == \
        fixture("message_publish_image_request.json")


def test_the_hubs_own_message_goes_out_from_the_business_number():
    message = ev.message(703, direction="out", text="Hello from the hub", author=ev.OLGA)
    body = inbox.publish_body(event_data(message), "12001", "+15550001111")
    assert body["messageDirection"] == "OUTGOING"
    assert body["senders"] == [{"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+15550001111"},
                                "name": "Olga"}]
    assert body["recipients"][0]["deliveryIdentifier"]["value"] == "+15550000007"


def test_failed_status_body_names_metas_reason():
    message = {**ev.message(704, direction="out"), "status": "failed",
               "error": {"code": 131026, "title": "Message undeliverable", "details": "Message undeliverable"}}
    assert inbox.status_body(message) == fixture("message_status_failed_request.json")
    assert inbox.status_body({"status": "read"}) == {"statusType": "READ"}
    assert inbox.status_body({"status": "sent"}) == {"statusType": "SENT"}
    assert inbox.status_body({"status": "delivered"}) is None


def test_outgoing_channel_message_created_becomes_one_send_text():
    raw = (FIXTURES / "OUTGOING_CHANNEL_MESSAGE_CREATED__text.json").read_bytes()
    assert inbox_hooks.is_inbox_hook(raw)
    message = inbox_hooks.parse(raw)
    assert message is not None and message.conversation_id == 7
    command = inbox_hooks.command(message)
    assert command == SendText(
        text="Yes, it ships tomorrow!\ninvoice.pdf https://api-na1.hubspotusercontent.com/files/invoice.pdf",
        conversation_id=7, author="Ivan Sales", idempotency_key="hubspot-inbox:5d1f0c2e9a7b4c1d8e6f3a2b1c0d9e8f",
        crm_message_id="5d1f0c2e9a7b4c1d8e6f3a2b1c0d9e8f")


def test_other_event_types_and_bad_bodies():
    assert inbox_hooks.parse(json.dumps({"type": "CHANNEL_ACCOUNT_CREATED"}).encode()) is None
    with pytest.raises(WebhookRejected) as exc:
        inbox_hooks.parse(b"{not json")
    assert exc.value.status == 400
    assert not inbox_hooks.is_inbox_hook(b'[{"subscriptionType": "deal.propertyChange"}]')


def test_window_refusal_text_names_the_templates():
    text = whatsapp_words.refusal_text({"ok": False, "detail": "window_closed: the 24-hour window is closed",
                               "templates": [{"name": "order_update", "language": "en"}]})
    assert "24 hours" in text and "order_update (en)" in text


def test_emulator_answers_the_documented_bodies(emu):
    hs = client(emu.base_url)
    assert hs.inboxes() == fixture("inboxes_response.json")["results"]
    created = hs.create_custom_channel(fixture("channel_create_request.json"), emu.inbox.inbox.developer_api_key,
                                       emu.inbox.inbox.app_id)
    expected = fixture("channel_create_response.json")
    assert set(created) == set(expected) and created["webhookUrl"] == expected["webhookUrl"]
    account = hs.create_channel_account(created["id"], fixture("channel_account_create_request.json"))
    listed = hs.channel_accounts(created["id"], "+15550001111")
    assert [set(a) for a in listed] == [set(fixture("channel_accounts_response.json")["results"][0])]
    assert listed[0]["id"] == account["id"]
    assert hs.channel_accounts(created["id"], "+15559999999") == []
    body = {**fixture("message_publish_incoming_request.json"), "channelAccountId": account["id"]}
    published = hs.publish_message(created["id"], body)
    assert set(published) == set(fixture("message_publish_response.json"))
    assert published["direction"] == "INCOMING" and published["text"] == body["text"]
    again = hs.publish_message(created["id"], body)  # the same integrationIdempotencyId: the same message
    assert again["id"] == published["id"] and emu.inbox.stats()["repeated_idempotency"] == 1


def test_emulator_refuses_bad_bodies_in_hubspots_error_shape(emu):
    hs = client(emu.base_url)
    channel = hs.create_custom_channel(fixture("channel_create_request.json"), emu.inbox.inbox.developer_api_key,
                                       emu.inbox.inbox.app_id)
    account = hs.create_channel_account(channel["id"], fixture("channel_account_create_request.json"))
    body = {**fixture("message_publish_incoming_request.json"), "channelAccountId": account["id"], "senders": []}
    with pytest.raises(ValidationFailed) as exc:
        hs.publish_message(channel["id"], body)
    expected = fixture("validation_400_publish_missing_senders.json")
    assert set(exc.value.body) == set(expected)
    assert exc.value.body["errors"] == expected["errors"] and exc.value.body["category"] == "VALIDATION_ERROR"
    with pytest.raises(ValidationFailed):
        hs.update_message_status(channel["id"], "nope", {"statusType": "DELIVERED"})
    with pytest.raises(Exception) as refused:
        hs.create_custom_channel(fixture("channel_create_request.json"), "wrong-key", emu.inbox.inbox.app_id)
    assert getattr(refused.value, "status", None) == 401
