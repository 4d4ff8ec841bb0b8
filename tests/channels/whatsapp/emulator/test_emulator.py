"""The WhatsApp Cloud API emulator itself: endpoints, errors, limits, windows, media,
templates, 360dialog mode, and the webhook driver (signature, batching, duplicates,
reordering, retries). HTTP goes through a real loopback server (emulator.serve())."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest
import requests
from flask import Flask, request

from hub.channels.whatsapp.emulator import WhatsAppEmulator
from hub.channels.whatsapp.emulator.driver import (
    DEFAULT_RETRY_DELAYS, FlaskClientTransport, WebhookDriver, encode_body,
)
from hub.channels.whatsapp.emulator.webhooks import pricing
from tests.support.clock import FakeClock
from tests.support.receiver import Receiver, Reply

WABA, PNID, TOKEN, SECRET = "1100000000000001", "2200000000000002", "EAAG-test-token", "app-secret-1"
WABA_B, PNID_B, TOKEN_B = "1100000000000009", "2200000000000009", "EAAG-other-business"
WABA_D, PNID_D, D360_KEY = "1100000000000003", "3300000000000003", "d360-key-abc"
ANA, BOB = "15557654321", "15557654322"

ORDER_UPDATE = [
    {"type": "HEADER", "format": "DOCUMENT"},
    {"type": "BODY", "text": "Hi {{1}}, order {{2}} totals {{3}}."},
    {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Accept"},
        {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}"}]},
]
ORDER_UPDATE_COMPONENTS = [
    {"type": "header", "parameters": [
        {"type": "document", "document": {"link": "https://files.example.com/inv.pdf", "filename": "inv.pdf"}}]},
    {"type": "body", "parameters": [
        {"type": "text", "text": "Ana"},
        {"type": "currency", "currency": {"fallback_value": "$19.99", "code": "USD", "amount_1000": 19990}},
        {"type": "date_time", "date_time": {"fallback_value": "August 5, 2026"}}]},
    {"type": "button", "sub_type": "quick_reply", "index": "0",
     "parameters": [{"type": "payload", "payload": "accept_42"}]},
    {"type": "button", "sub_type": "url", "index": 1, "parameters": [{"type": "text", "text": "42"}]},
]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def receiver():
    with Receiver() as rx:
        yield rx


def make_emulator(clock, sleeps, receiver, **kwargs):
    driver_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in (
        "batch_size", "duplicate_ratio", "out_of_order_ratio", "skip_delivered_ratio",
        "retry_delays", "transport", "seed")}
    emu = WhatsAppEmulator(clock=clock, driver=WebhookDriver(clock=clock, sleep=sleeps.append, **driver_kw),
                           **kwargs)
    emu.add_number(phone_number_id=PNID, waba_id=WABA, display_phone_number="15550001111",
                   token=TOKEN, app_secret=SECRET, verify_token="verify-me",
                   webhook_url=f"{receiver.url}/webhooks/whatsapp/main")
    emu.add_number(phone_number_id=PNID_B, waba_id=WABA_B, display_phone_number="15550002222",
                   token=TOKEN_B, app_secret="other-secret", webhook_url=f"{receiver.url}/b")
    emu.add_number(phone_number_id=PNID_D, waba_id=WABA_D, display_phone_number="4915100000000",
                   provider="360dialog", d360_key=D360_KEY,
                   webhook_url=f"{receiver.url}/webhooks/whatsapp/d360",
                   webhook_headers={"X-Hub-Token": "per-channel-token"})
    emu.add_template(WABA, name="order_update", language="en_US", category="UTILITY",
                     components=ORDER_UPDATE)
    emu.add_template(WABA, name="promo", language="en", category="MARKETING",
                     components=[{"type": "BODY", "text": "Sale! {{1}} off"}])
    emu.add_template(WABA, name="welcome_named", language="en", category="UTILITY",
                     parameter_format="NAMED",
                     components=[{"type": "BODY", "text": "Hi {{first_name}}, code {{code}}"}])
    emu.add_template(WABA, name="draft", language="en", category="UTILITY", status="PENDING",
                     components=[{"type": "BODY", "text": "Not yet"}])
    emu.add_template(WABA_D, name="d360_hello", language="de", category="UTILITY",
                     components=[{"type": "BODY", "text": "Hallo {{1}}"}])
    return emu


@pytest.fixture
def emu(clock, sleeps, receiver):
    return make_emulator(clock, sleeps, receiver)


@pytest.fixture
def server(emu):
    with emu.serve() as srv:
        yield srv


@pytest.fixture
def api():
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def send(api, server, body, pnid=PNID):
    return api.post(f"{server.graph_url}/{pnid}/messages", json={"messaging_product": "whatsapp", **body})


def text(to=ANA, body="hello"):
    return {"recipient_type": "individual", "to": f"+{to}", "type": "text", "text": {"body": body}}


def template(name="order_update", lang="en_US", components=None, to=ANA):
    tpl = {"name": name, "language": {"code": lang}}
    if components is not None:
        tpl["components"] = components
    return {"to": f"+{to}", "type": "template", "template": tpl}


def assert_error(resp, code, status=400, fragment=None):
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert err["type"] == "OAuthException"
    assert err["fbtrace_id"]
    if code != 190:
        assert err["message"].startswith(f"(#{code}) ")
        assert err["error_data"]["messaging_product"] == "whatsapp"
        if fragment:
            assert fragment in err["error_data"]["details"], err["error_data"]["details"]
    return err


def statuses(receiver):
    """Every status item the receiver got, in arrival order."""
    out = []
    for body in receiver.bodies():
        for entry in body["entry"]:
            for change in entry["changes"]:
                out.extend(change["value"].get("statuses", []))
    return out


def messages(receiver):
    out = []
    for body in receiver.bodies():
        for entry in body["entry"]:
            for change in entry["changes"]:
                out.extend(change["value"].get("messages", []))
    return out


# -- auth and routing ------------------------------------------------------------------


def test_missing_token_is_graph_401_code_190(server):
    resp = requests.post(f"{server.graph_url}/{PNID}/messages", json={})
    err = assert_error(resp, 190, status=401)
    assert "access token" in err["message"]


def test_wrong_token_is_401_code_190(server):
    resp = requests.post(f"{server.graph_url}/{PNID}/messages", json=text(),
                         headers={"Authorization": "Bearer nope"})
    err = assert_error(resp, 190, status=401)
    assert err["message"] == "Invalid OAuth access token - Cannot parse access token"


def test_token_of_another_business_cannot_see_the_number(server):
    resp = requests.post(f"{server.graph_url}/{PNID}/messages", json=text(),
                         headers={"Authorization": f"Bearer {TOKEN_B}"})
    err = assert_error(resp, 100)
    assert err["error_subcode"] == 33


def test_access_token_query_parameter_is_accepted(emu, server):
    emu.open_window(PNID, ANA)
    resp = requests.post(f"{server.graph_url}/{PNID}/messages?access_token={TOKEN}",
                         json={"messaging_product": "whatsapp", **text()})
    assert resp.status_code == 200


def test_other_api_version_is_an_unknown_path(server, api):
    resp = api.post(f"{server.base_url}/v19.0/{PNID}/messages", json=text())
    assert_error(resp, 2500, fragment="v25.0")


def test_api_version_is_configurable(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, api_version="v23.0")
    emu.open_window(PNID, ANA)
    with emu.serve() as srv:
        assert srv.graph_url.endswith("/v23.0")
        assert send(api, srv, text()).status_code == 200
        # v23 and below still carry a conversation object on sent and delivered
        emu.flush()
    sent, delivered = statuses(receiver)[:2]
    assert sent["conversation"]["origin"]["type"] == "service"
    assert "expiration_timestamp" in sent["conversation"]
    assert "expiration_timestamp" not in delivered["conversation"]


# -- sending ---------------------------------------------------------------------------


def test_text_inside_the_window_is_accepted_and_followed_by_statuses(emu, server, api, receiver):
    emu.customer(PNID, ANA, name="Ana").send_text("hi")
    emu.flush()
    resp = send(api, server, {**text(body="Your order shipped"), "biz_opaque_callback_data": "crm-1"})
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == ["messaging_product", "contacts", "messages"]
    assert body["contacts"] == [{"input": f"+{ANA}", "wa_id": ANA}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    [sent] = emu.sent
    assert sent.id == wamid and sent.body["text"]["body"] == "Your order shipped"
    assert sent.statuses == ["sent", "delivered", "read"]
    emu.flush()
    got = statuses(receiver)
    assert [s["status"] for s in got] == ["sent", "delivered", "read"]
    assert all(s["id"] == wamid and s["recipient_id"] == ANA for s in got)
    assert all(s["biz_opaque_callback_data"] == "crm-1" for s in got)
    assert all(isinstance(s["timestamp"], str) for s in got)
    # pricing on sent and exactly one of delivered/read; Nov 2026: service is billed
    assert [("pricing" in s) for s in got] == [True, True, False]
    assert got[0]["pricing"] == {"billable": True, "pricing_model": "PMP", "type": "regular",
                                 "category": "service"}
    assert "conversation" not in got[0]  # v24+: only inside a free entry point


def test_to_without_plus_gets_the_business_country_code(emu, server, api):
    emu.open_window(PNID, ANA)
    resp = send(api, server, {**text(), "to": "5557654321"})
    assert resp.json()["contacts"] == [{"input": "5557654321", "wa_id": ANA}]


def test_free_form_outside_the_window_is_131047(emu, server, api):
    resp = send(api, server, text(BOB))
    assert_error(resp, 131047, fragment="24 hours")
    assert emu.sent == []


def test_window_closes_24_hours_after_the_last_inbound_message(emu, server, api, clock):
    ana = emu.customer(PNID, ANA)
    ana.send_text("first")
    clock.advance(20 * 3600)
    ana.send_text("refreshes the window")
    clock.advance(24 * 3600 - 1)
    assert send(api, server, text()).status_code == 200
    clock.advance(1)
    assert_error(send(api, server, text()), 131047)
    assert not emu.window_open(PNID, ANA)


def test_reactions_and_system_messages_do_not_open_the_window(emu, server, api):
    ana = emu.customer(PNID, ANA)
    ana.react("wamid.X", "\u2764")
    ana.send_unsupported()
    ana.change_number("15559990000")
    assert not emu.window_open(PNID, ANA)
    assert_error(send(api, server, text()), 131047)


def test_131047_can_be_reported_asynchronously(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, async_error_codes=(131026, 131047))
    with emu.serve() as srv:
        resp = send(api, srv, text(BOB))
        assert resp.status_code == 200
        emu.flush()
    [failed] = statuses(receiver)
    assert failed["status"] == "failed" and failed["id"] == resp.json()["messages"][0]["id"]
    assert failed["errors"][0]["code"] == 131047
    assert failed["errors"][0]["title"] == failed["errors"][0]["message"] == "Re-engagement message"
    assert emu.sent[0].error_code == 131047


def test_a_template_outside_the_window_is_accepted_and_billed(emu, server, api, receiver):
    resp = send(api, server, template(components=ORDER_UPDATE_COMPONENTS, to=BOB))
    assert resp.status_code == 200
    assert resp.json()["messages"][0]["message_status"] == "accepted"
    emu.flush()
    assert statuses(receiver)[0]["pricing"] == {"billable": True, "pricing_model": "PMP",
                                                "type": "regular", "category": "utility"}


def _upload(api, server, data=b"\xff\xd8\xffjpeg", mime="image/jpeg", pnid=PNID):
    resp = api.post(f"{server.graph_url}/{pnid}/media", data={"messaging_product": "whatsapp"},
                    files={"file": ("pic.jpg", data, mime)})
    assert resp.status_code == 200, resp.text
    return resp.json()["id"]


def test_every_outbound_type_is_accepted(emu, server, api):
    emu.open_window(PNID, ANA)
    image_id = _upload(api, server)
    bodies = {
        "image_id": {"type": "image", "image": {"id": image_id, "caption": "Invoice"}},
        "image_link": {"type": "image", "image": {"link": "https://files.example.com/a.jpg"}},
        "audio": {"type": "audio", "audio": {"link": "https://files.example.com/a.ogg"}},
        "video": {"type": "video", "video": {"link": "https://files.example.com/a.mp4", "caption": "c"}},
        "document": {"type": "document", "document": {"link": "https://files.example.com/inv.pdf",
                                                      "filename": "inv.pdf", "caption": "Invoice"}},
        "sticker": {"type": "sticker", "sticker": {"link": "https://files.example.com/s.webp"}},
        "location": {"type": "location", "location": {"latitude": 52.52, "longitude": 13.405,
                                                      "name": "Office", "address": "Street 1"}},
        "contacts": {"type": "contacts", "contacts": [{"name": {"formatted_name": "Jo Bloggs"},
                                                       "phones": [{"phone": "+15550100000"}]}]},
        "buttons": {"type": "interactive", "interactive": {
            "type": "button", "header": {"type": "text", "text": "Appointment"},
            "body": {"text": "Tomorrow 9:00"}, "footer": {"text": "Reply"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Confirm"}},
                                   {"type": "reply", "reply": {"id": "no", "title": "Reschedule"}}]}}},
        "list": {"type": "interactive", "interactive": {
            "type": "list", "body": {"text": "Shipping?"},
            "action": {"button": "Options", "sections": [{"title": "Fast", "rows": [
                {"id": "express", "title": "Express", "description": "1-2 days"}]}]}}},
        "reaction": {"type": "reaction", "reaction": {"message_id": "wamid.A1", "emoji": "\U0001f600"}},
        "reply": {"type": "text", "text": {"body": "quoted", "preview_url": False},
                  "context": {"message_id": "wamid.A1"}},
        "template": {"type": "template", "template": template(components=ORDER_UPDATE_COMPONENTS)["template"]},
        "named_template": {"type": "template", "template": {
            "name": "welcome_named", "language": {"code": "en"}, "components": [{"type": "body", "parameters": [
                {"type": "text", "parameter_name": "code", "text": "1234"},
                {"type": "text", "parameter_name": "first_name", "text": "Ana"}]}]}},
    }
    for name, body in bodies.items():
        resp = send(api, server, {"to": f"+{ANA}", **body})
        assert resp.status_code == 200, (name, resp.text)
    assert [m.type for m in emu.sent][:3] == ["image", "image", "audio"]
    reaction = next(m for m in emu.sent if m.type == "reaction")
    assert reaction.statuses == ["sent"]  # reactions only ever produce `sent`


@pytest.mark.parametrize("body, code, fragment", [
    (b"not json", 100, "not valid JSON"),
    (b"[1, 2]", 100, "JSON object"),
    (json.dumps({"to": "+1555", "type": "text", "text": {"body": "x"}}).encode(), 100, "messaging_product"),
    (json.dumps({"messaging_product": "sms", "to": "+1555"}).encode(), 100, "messaging_product"),
])
def test_unreadable_bodies_are_code_100(server, api, body, code, fragment):
    resp = api.post(f"{server.graph_url}/{PNID}/messages", data=body,
                    headers={"Content-Type": "application/json"})
    assert_error(resp, code, fragment=fragment)


@pytest.mark.parametrize("body, code, fragment", [
    ({"to": f"+{ANA}", "type": "fax", "fax": {}}, 100, 'got "fax"'),
    ({**text(), "colour": "red"}, 100, 'Unexpected key "colour"'),
    ({**text(), "text": {"body": "x", "bold": True}}, 100, 'Unexpected key "bold"'),
    ({"to": f"+{ANA}", "type": "audio", "audio": {"link": "https://a/b.ogg", "caption": "no"}}, 100, '"caption"'),
    ({**text(), "text": "just a string"}, 100, "JSON object"),
    ({"type": "text", "text": {"body": "x"}}, 131008, "to"),
    ({"to": f"+{ANA}", "type": "text", "text": {}}, 131008, "text['body']"),
    ({"to": f"+{ANA}", "type": "text"}, 131008, "text"),
    ({"to": f"+{ANA}", "type": "image", "image": {}}, 131008, "exactly one of id or link"),
    ({"to": f"+{ANA}", "type": "location", "location": {"latitude": 1}}, 131008, "longitude"),
    ({"to": f"+{ANA}", "type": "contacts", "contacts": []}, 131008, "contacts"),
    ({"to": f"+{ANA}", "type": "interactive", "interactive": {"type": "button", "body": {"text": "b"}}},
     131008, "action"),
    ({**text(body="x" * 4097)}, 131009, "4096"),
    ({"to": f"+{ANA}", "type": "image", "image": {"id": "1", "link": "https://a/b.jpg"}}, 131009, "exactly one"),
    ({"to": f"+{ANA}", "type": "image", "image": {"link": "ftp://a/b.jpg"}}, 131009, "http(s)"),
    ({"to": f"+{ANA}", "type": "image", "image": {"id": "404404"}}, 131009, "404404"),
    ({"to": f"+{ANA}", "type": "location", "location": {"latitude": 100, "longitude": 0}}, 131009, "latitude"),
    ({"to": f"+{ANA}", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "b"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": str(i), "title": f"B{i}"}} for i in range(4)]}}}, 131009, "at most 3"),
    ({"to": f"+{ANA}", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "b"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "1", "title": "x" * 21}}]}}}, 131009, "20"),
    ({"to": f"+{ANA}", "type": "interactive", "interactive": {
        "type": "list", "body": {"text": "b"}, "action": {"button": "Go", "sections": [
            {"title": "s", "rows": [{"id": str(i), "title": "r"} for i in range(11)]}]}}}, 131009, "10 rows"),
    ({"to": "+12", **{k: v for k, v in text().items() if k != "to"}}, 131009, "valid phone number"),
])
def test_malformed_send_bodies_say_which_parameter(emu, server, api, body, code, fragment):
    emu.open_window(PNID, ANA)
    assert_error(send(api, server, body), code, fragment=fragment)
    assert emu.sent == []


@pytest.mark.parametrize("body, code, fragment", [
    (template(name="nope"), 132001, "nope"),
    (template(lang="de"), 132001, "de"),
    (template(name="draft", lang="en"), 132001, "PENDING"),
    (template(name="promo", lang="en", components=[]), 132000, "body: number of localizable_params (0)"),
    (template(name="promo", lang="en", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]), 132000, "(2)"),
    (template(components=[{**ORDER_UPDATE_COMPONENTS[0], "parameters": [
        {"type": "image", "image": {"link": "https://a/b.jpg"}}]}, *ORDER_UPDATE_COMPONENTS[1:]]),
     132012, "expected DOCUMENT, received IMAGE"),
    (template(name="promo", lang="en", components=[{"type": "body", "parameters": [
        {"type": "image", "image": {"link": "https://a/b.jpg"}}]}]), 132012, "received IMAGE"),
    (template(components=ORDER_UPDATE_COMPONENTS[:3]), 131008, "Button at index 1 of type Url"),
    (template(components=[*ORDER_UPDATE_COMPONENTS[:3], {**ORDER_UPDATE_COMPONENTS[3], "sub_type": "quick_reply"}]),
     132012, "sub_type must be url"),
    (template(components=[*ORDER_UPDATE_COMPONENTS, {"type": "button", "sub_type": "url", "index": 5,
                                                     "parameters": []}]), 131009, "index 5"),
    (template(name="welcome_named", lang="en", components=[{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
        {"type": "text", "parameter_name": "coupon", "text": "x"}]}]), 132000, "names"),
    (template(name="welcome_named", lang="en", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "Ana"}, {"type": "text", "text": "x"}]}]), 132012, "parameter_name"),
    (template(name="promo", lang="en", components=[{"type": "body", "parameters": [
        {"type": "currency", "currency": {"code": "USD"}}]}]), 131008, "fallback_value"),
    ({"to": f"+{ANA}", "type": "template", "template": {"name": "promo"}}, 131008, "language"),
])
def test_template_errors_are_checked_against_the_stored_template(emu, server, api, body, code, fragment):
    assert_error(send(api, server, body), code, fragment=fragment)
    assert emu.sent == []


def test_template_status_change_makes_it_sendable_and_emits_a_webhook(emu, server, api, receiver, clock):
    body = template(name="draft", lang="en")
    assert_error(send(api, server, body), 132001)
    emu.set_template_status(emu.template(WABA, "draft", "en"), "APPROVED")
    emu.flush()
    [post] = receiver.bodies()
    entry = post["entry"][0]
    assert entry["id"] == WABA and entry["time"] == int(clock().timestamp())
    change = entry["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"]["event"] == "APPROVED"
    assert isinstance(change["value"]["message_template_id"], int)
    assert change["value"]["message_template_name"] == "draft"
    assert send(api, server, body).status_code == 200


def test_throughput_above_the_numbers_mps_is_130429(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, pair_limit=None)
    emu.numbers[PNID].mps = 3
    users = [f"1555000{i:04d}" for i in range(5)]
    for u in users:
        emu.open_window(PNID, u)
    with emu.serve() as srv:
        for u in users[:3]:
            assert send(api, srv, text(u)).status_code == 200
        assert_error(send(api, srv, text(users[3])), 130429, fragment="3 messages per second")
        clock.advance(0.5)
        assert_error(send(api, srv, text(users[3])), 130429)  # still inside the sliding second
        clock.advance(0.5)
        assert send(api, srv, text(users[3])).status_code == 200
    assert len(emu.sent) == 4


def test_pair_rate_limit_is_per_recipient_and_can_be_switched_off(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, pair_limit=(2, 6.0))
    emu.open_window(PNID, ANA)
    emu.open_window(PNID, BOB)
    with emu.serve() as srv:
        assert send(api, srv, text()).status_code == 200
        assert send(api, srv, text()).status_code == 200
        assert_error(send(api, srv, text()), 131056, fragment="same phone number")
        assert send(api, srv, text(BOB)).status_code == 200  # other users are unaffected
        clock.advance(6)
        assert send(api, srv, text()).status_code == 200
        assert_error(send(api, srv, text()), 131056)
    off = make_emulator(clock, sleeps, receiver, pair_limit=None)
    off.open_window(PNID, ANA)
    with off.serve() as srv:
        assert all(send(api, srv, text()).status_code == 200 for _ in range(50))


def test_unknown_recipient_fails_asynchronously_with_131026(emu, server, api, receiver):
    emu.add_unknown_recipient(BOB)
    resp = send(api, server, template(components=ORDER_UPDATE_COMPONENTS, to=BOB))
    assert resp.status_code == 200
    emu.flush()
    [failed] = statuses(receiver)
    assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131026
    assert "pricing" not in failed
    assert "contacts" not in receiver.bodies()[0]["entry"][0]["changes"][0]["value"]


def test_131026_can_be_synchronous(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, async_error_codes=())
    emu.add_unknown_recipient(BOB)
    with emu.serve() as srv:
        assert_error(send(api, srv, template(components=ORDER_UPDATE_COMPONENTS, to=BOB)), 131026)


def test_marketing_to_an_opted_out_user_is_131050(emu, server, api, receiver):
    ana = emu.customer(PNID, ANA)
    pref = ana.stop_marketing()
    assert pref["value"] == "stop"
    promo = template(name="promo", lang="en", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "20%"}]}])
    assert_error(send(api, server, promo), 131050, fragment="stop receiving marketing")
    assert send(api, server, template(components=ORDER_UPDATE_COMPONENTS)).status_code == 200
    ana.resume_marketing()
    assert send(api, server, promo).status_code == 200
    emu.flush()
    prefs = [c["value"] for b in receiver.bodies() for e in b["entry"] for c in e["changes"]
             if c["field"] == "user_preferences"]
    assert [p["user_preferences"][0]["value"] for p in prefs] == ["stop", "resume"]


def test_mark_as_read_with_typing_indicator(emu, server, api):
    msg = emu.customer(PNID, ANA).send_text("hello?")
    resp = send(api, server, {"status": "read", "message_id": msg["id"], "typing_indicator": {"type": "text"}})
    assert resp.status_code == 200 and resp.json() == {"success": True}
    [mark] = emu.read_marks
    assert mark.message_id == msg["id"] and mark.typing_indicator
    assert_error(send(api, server, {"status": "read", "message_id": "wamid.unknown"}), 131009)
    assert_error(send(api, server, {"status": "read"}), 131008, fragment="message_id")
    assert_error(send(api, server, {"status": "read", "message_id": msg["id"],
                                    "typing_indicator": {"type": "voice"}}), 100)


def test_sending_to_a_business_scoped_user_id(emu, server, api):
    user = emu.customer(PNID, None, username="ana.s", name="Ana")
    user.send_text("hi from a username")
    resp = send(api, server, {"recipient": user.user_id, "type": "text", "text": {"body": "hey"}})
    assert resp.status_code == 200
    assert resp.json()["contacts"] == [{"input": user.user_id, "user_id": user.user_id}]
    assert_error(send(api, server, {"recipient": "US.000", "type": "text", "text": {"body": "x"}}), 131009)


# -- injected failures -----------------------------------------------------------------


def test_injected_500s_then_normal_service(emu, server, api):
    emu.open_window(PNID, ANA)
    emu.fail_next(2)
    assert send(api, server, text()).status_code == 500
    err = send(api, server, text()).json()["error"]
    assert err["code"] == 1 and err["is_transient"] is True
    assert send(api, server, text()).status_code == 200
    assert len(emu.sent) == 1


def test_injected_error_code_only_hits_the_chosen_endpoint(emu, server, api):
    emu.open_window(PNID, ANA)
    emu.fail_next(1, code=131000, endpoint="messages")
    assert api.get(f"{server.graph_url}/{PNID}").status_code == 200
    assert_error(send(api, server, text()), 131000, status=500)
    emu.fail_next(1, code=130429, status=429)
    assert_error(api.get(f"{server.graph_url}/{PNID}"), 130429, status=429)
    assert send(api, server, text()).status_code == 200


def test_fail_next_rejects_unknown_endpoints(emu):
    with pytest.raises(ValueError, match="endpoint"):
        emu.fail_next(1, endpoint="mesages")


def test_injected_hang_makes_the_client_time_out(emu, server, api):
    emu.open_window(PNID, ANA)
    emu.fail_next(1, hang=30, endpoint="messages")
    with pytest.raises(requests.Timeout):
        api.post(f"{server.graph_url}/{PNID}/messages", json={"messaging_product": "whatsapp", **text()},
                 timeout=0.2)
    # the stalled request is released when the server stops; later calls are normal
    assert api.get(f"{server.graph_url}/{PNID}").status_code == 200


# -- media -----------------------------------------------------------------------------


def test_upload_then_fresh_url_then_download_with_the_same_bearer(emu, server, api, clock):
    media_id = _upload(api, server, data=b"\x89PNG picture", mime="image/png")
    info = api.get(f"{server.graph_url}/{media_id}", params={"phone_number_id": PNID}).json()
    assert info["messaging_product"] == "whatsapp" and info["id"] == media_id
    assert info["mime_type"] == "image/png"
    assert info["sha256"] == hashlib.sha256(b"\x89PNG picture").hexdigest()
    assert info["file_size"] == str(len(b"\x89PNG picture"))
    url = info["url"]
    assert url.startswith(f"{server.base_url}/whatsapp_business/attachments/?mid={media_id}&ext=")
    got = api.get(url)
    assert got.status_code == 200 and got.content == b"\x89PNG picture"
    assert got.headers["Content-Type"] == "image/png"
    assert requests.get(url).status_code == 401  # the URL alone is not enough
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN_B}"}).status_code == 401
    clock.advance(299)
    assert api.get(url).status_code == 200
    clock.advance(1)
    assert api.get(url).status_code == 404  # 5 minutes are up: fetch a new URL
    fresh = api.get(f"{server.graph_url}/{media_id}").json()["url"]
    assert fresh != url and api.get(fresh).content == b"\x89PNG picture"
    assert api.get(url.replace("hash=", "hash=0")).status_code == 404


def test_media_url_with_another_numbers_id_is_refused(emu, server, api):
    media_id = _upload(api, server)
    assert_error(api.get(f"{server.graph_url}/{media_id}", params={"phone_number_id": "999"}), 100,
                 fragment="does not belong")
    resp = requests.get(f"{server.graph_url}/{media_id}", headers={"Authorization": f"Bearer {TOKEN_B}"})
    assert_error(resp, 100)


def test_delete_media(emu, server, api):
    media_id = _upload(api, server)
    url = api.get(f"{server.graph_url}/{media_id}").json()["url"]
    resp = api.delete(f"{server.graph_url}/{media_id}")
    assert resp.status_code == 200 and resp.json() == {"success": True}
    assert_error(api.get(f"{server.graph_url}/{media_id}"), 100, fragment="does not exist")
    assert api.get(url).status_code == 404
    emu.open_window(PNID, ANA)
    assert_error(send(api, server, {"to": f"+{ANA}", "type": "image", "image": {"id": media_id}}), 131009)


def test_upload_checks(emu, server, api):
    url = f"{server.graph_url}/{PNID}/media"
    assert_error(api.post(url, files={"file": ("a.jpg", b"x", "image/jpeg")}), 100, fragment="messaging_product")
    assert_error(api.post(url, data={"messaging_product": "whatsapp"}), 131008, fragment="file")
    assert_error(api.post(url, data={"messaging_product": "whatsapp"},
                          files={"file": ("a.exe", b"MZ", "application/x-msdownload")}), 131053, fragment="MIME")
    big = b"x" * (500 * 1024 + 1)
    assert_error(api.post(url, data={"messaging_product": "whatsapp"},
                          files={"file": ("s.webp", big, "image/webp")}), 131053, fragment="at most")
    assert api.post(url, data={"messaging_product": "whatsapp", "type": "audio/ogg; codecs=opus"},
                    files={"file": ("v.ogg", b"OggS", "application/octet-stream")}).status_code == 200


def test_inbound_media_is_downloadable_and_its_hash_matches(emu, server, api, receiver):
    msg = emu.customer(PNID, ANA).send_image(b"photo bytes", caption="Broken part")
    image = msg["image"]
    assert image["caption"] == "Broken part" and image["mime_type"] == "image/jpeg"
    assert image["sha256"] == __import__("base64").b64encode(hashlib.sha256(b"photo bytes").digest()).decode()
    assert api.get(image["url"]).content == b"photo bytes"
    info = api.get(f"{server.graph_url}/{image['id']}").json()
    assert api.get(info["url"]).content == b"photo bytes"
    emu.flush()
    assert messages(receiver)[0]["image"]["id"] == image["id"]


def test_inbound_media_ids_expire_after_7_days(emu, server, api, clock):
    media_id = emu.customer(PNID, ANA).send_document(b"%PDF", filename="a.pdf")["document"]["id"]
    clock.advance(7 * 86400 - 1)
    assert api.get(f"{server.graph_url}/{media_id}").status_code == 200
    clock.advance(1)
    assert_error(api.get(f"{server.graph_url}/{media_id}"), 100)


# -- templates API ---------------------------------------------------------------------


def _seed(emu, count):
    for i in range(count):
        emu.add_template(WABA, name=f"bulk_{i:02d}", language="en", category="MARKETING",
                         status="REJECTED" if i % 3 == 0 else "APPROVED",
                         components=[{"type": "BODY", "text": f"Offer {i} for {{{{1}}}}"}])


def test_template_list_pages_with_cursors_and_absolute_next_urls(emu, server, api):
    _seed(emu, 10)  # 4 seeded in the fixture + 10
    url = f"{server.graph_url}/{WABA}/message_templates"
    resp = api.get(url, params={"limit": 4, "fields": "name,status"})
    pages, names = 0, []
    while True:
        body = resp.json()
        pages += 1
        names += [t["name"] for t in body["data"]]
        assert all(set(t) == {"id", "name", "status"} for t in body["data"])
        paging = body["paging"]
        assert set(paging["cursors"]) == {"before", "after"}
        if "next" not in paging:
            break
        assert paging["next"].startswith(url + "?") and "limit=4" in paging["next"]
        assert "fields=name%2Cstatus" in paging["next"]
        resp = api.get(paging["next"])
    assert pages == 4 and len(names) == 14 and len(set(names)) == 14
    assert names[:4] == ["order_update", "promo", "welcome_named", "draft"]
    # back one page with the `before` cursor
    last = resp.json()
    assert "previous" in last["paging"]
    prev = api.get(last["paging"]["previous"]).json()
    assert [t["name"] for t in prev["data"]] == names[8:12]


def test_template_list_filters_and_default_fields(emu, server, api):
    _seed(emu, 6)
    url = f"{server.graph_url}/{WABA}/message_templates"
    approved = api.get(url, params={"status": "APPROVED", "limit": 100}).json()["data"]
    assert approved and all(t["status"] == "APPROVED" for t in approved)
    assert {"draft"}.isdisjoint(t["name"] for t in approved)
    assert set(approved[0]) == {"name", "parameter_format", "components", "language", "status", "category", "id"}
    assert isinstance(approved[0]["id"], str)
    named = api.get(url, params={"name": "bulk_0"}).json()["data"]
    assert [t["name"] for t in named] == [f"bulk_0{i}" for i in range(6)]
    assert [t["name"] for t in api.get(url, params={"category": "UTILITY"}).json()["data"]] == [
        "order_update", "welcome_named", "draft"]
    quality = api.get(url, params={"fields": "quality_score", "name": "promo"}).json()["data"][0]
    assert quality["quality_score"]["score"] == "UNKNOWN"
    assert api.get(url, params={"name": "zzz"}).json() == {"data": []}


@pytest.mark.parametrize("params, fragment", [
    ({"fields": "name,colour"}, "nonexisting field (colour)"),
    ({"limit": "many"}, "limit"),
    ({"limit": 0}, "limit"),
    ({"after": "garbage!"}, "cursor"),
    ({"status": "SHINY"}, "status"),
])
def test_template_list_bad_parameters(server, api, params, fragment):
    assert_error(api.get(f"{server.graph_url}/{WABA}/message_templates", params=params), 100, fragment=fragment)


def test_template_list_needs_a_token_of_that_waba(server, api):
    resp = requests.get(f"{server.graph_url}/{WABA}/message_templates", headers={"Authorization": f"Bearer {TOKEN_B}"})
    assert_error(resp, 100)


def test_create_template_then_review_by_webhook(emu, server, api, receiver):
    url = f"{server.graph_url}/{WABA}/message_templates"
    new = {"name": "order_confirmation", "language": "en_US", "category": "utility",
           "components": [{"type": "body", "text": "Hi {{1}}! Order {{2}} is confirmed.",
                           "example": {"body_text": [["Pablo", "860198-230332"]]}}]}
    resp = api.post(url, json=new)
    assert resp.status_code == 200
    created = resp.json()
    assert created["status"] == "PENDING" and created["category"] == "UTILITY"
    listed = api.get(url, params={"name": "order_confirmation"}).json()["data"]
    assert listed[0]["id"] == created["id"] and listed[0]["components"][0]["type"] == "BODY"
    single = api.get(f"{server.graph_url}/{created['id']}", params={"fields": "status"}).json()
    assert single == {"id": created["id"], "status": "PENDING"}
    err = assert_error(api.post(url, json=new), 100, fragment="already exists")
    assert err["error_subcode"] == 2388024
    emu.set_template_status(created["id"], "REJECTED", reason="INVALID_FORMAT",
                            rejection_info={"reason": "Parameters next to each other",
                                            "recommendation": "Separate them"})
    emu.flush()
    value = receiver.bodies()[0]["entry"][0]["changes"][0]["value"]
    assert value["event"] == "REJECTED" and value["reason"] == "INVALID_FORMAT"
    assert value["message_template_id"] == int(created["id"])
    assert value["rejection_info"]["recommendation"] == "Separate them"
    assert api.delete(url, params={"name": "order_confirmation"}).json() == {"success": True}
    assert api.get(url, params={"name": "order_confirmation"}).json()["data"] == []


@pytest.mark.parametrize("body, fragment", [
    ({"name": "Bad Name", "language": "en", "category": "UTILITY", "components": [{"type": "BODY", "text": "x"}]}, "lowercase"),
    ({"name": "ok", "language": "en", "category": "PROMO", "components": [{"type": "BODY", "text": "x"}]}, "category"),
    ({"name": "ok", "language": "en", "category": "UTILITY", "components": []}, "components"),
    ({"name": "ok", "language": "en", "category": "UTILITY", "components": [{"type": "HEADER", "text": "x"}]}, "BODY"),
    ({"name": "ok", "language": "en", "category": "UTILITY", "components": [{"type": "BODY", "text": "{{2}}"}]}, "numbered"),
    ({"name": "ok", "category": "UTILITY", "components": [{"type": "BODY", "text": "x"}]}, "language"),
])
def test_create_template_validation(server, api, body, fragment):
    assert_error(api.post(f"{server.graph_url}/{WABA}/message_templates", json=body), 100, fragment=fragment)


def test_auto_approving_review_emits_approved(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, template_review="approve")
    with emu.serve() as srv:
        created = api.post(f"{srv.graph_url}/{WABA}/message_templates", json={
            "name": "fast", "language": "en", "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hello"}]}).json()
        assert created["status"] == "PENDING"
        assert emu.templates[created["id"]].status == "APPROVED"
        emu.flush()
    assert receiver.bodies()[0]["entry"][0]["changes"][0]["value"]["event"] == "APPROVED"


# -- phone number ----------------------------------------------------------------------


def test_phone_number_fields(emu, server, api):
    number = emu.numbers[PNID]
    number.quality_rating, number.messaging_limit = "YELLOW", "TIER_10K"
    fields = "display_phone_number,verified_name,quality_rating,throughput,whatsapp_business_manager_messaging_limit,status"
    body = api.get(f"{server.graph_url}/{PNID}", params={"fields": fields}).json()
    assert body == {"display_phone_number": "+1 555-000-1111", "verified_name": "Hub Demo",
                    "quality_rating": "YELLOW", "throughput": {"level": "STANDARD"},
                    "whatsapp_business_manager_messaging_limit": "TIER_10K", "status": "CONNECTED"}
    default = api.get(f"{server.graph_url}/{PNID}").json()
    assert default["id"] == PNID and default["platform_type"] == "CLOUD_API"
    assert_error(api.get(f"{server.graph_url}/{PNID}", params={"fields": "pin"}), 100, fragment="(pin)")
    assert_error(api.get(f"{server.graph_url}/{PNID_B}"), 100)  # another business's number


def test_number_events_are_emitted(emu, receiver):
    number = emu.numbers[PNID]
    assert emu.set_quality(number, "YELLOW") is None  # no webhook for GREEN -> YELLOW
    emu.set_quality(number, "RED")
    emu.set_quality(number, "GREEN")
    emu.set_messaging_limit(number, "TIER_10K")
    emu.set_throughput(number, 1000)
    tpl = emu.template(WABA, "promo", "en")
    emu.set_template_quality(tpl, "YELLOW")
    emu.set_template_category(tpl, "UTILITY")
    emu.emit_change(WABA, "account_update", {"event": "ACCOUNT_RESTRICTION", "restriction_info": []})
    emu.flush()
    changes = [(c["field"], c["value"]) for b in receiver.bodies() for e in b["entry"] for c in e["changes"]]
    assert [f for f, _ in changes] == [
        "phone_number_quality_update", "phone_number_quality_update", "business_capability_update",
        "phone_number_quality_update", "message_template_quality_update", "template_category_update",
        "account_update"]
    assert [changes[0][1]["event"], changes[1][1]["event"], changes[3][1]["event"]] == [
        "FLAGGED", "UNFLAGGED", "THROUGHPUT_UPGRADE"]
    assert changes[2][1] == {"max_daily_conversations_per_business": "TIER_10K"}
    assert changes[4][1]["new_quality_score"] == "YELLOW"
    assert changes[5][1]["previous_category"] == "MARKETING"
    assert all(isinstance(b["entry"][0]["time"], int) for b in receiver.bodies())
    assert number.mps == 1000


# -- 360dialog -------------------------------------------------------------------------


@pytest.fixture
def d360():
    with requests.Session() as session:
        session.headers["D360-API-KEY"] = D360_KEY
        yield session


def test_360dialog_send_with_the_api_key(emu, server, d360, receiver):
    user = emu.customer(PNID_D, "4915112345678", name="Lena")
    user.send_text("Hallo")
    resp = d360.post(f"{server.base_url}/messages", json={
        "messaging_product": "whatsapp", "to": "+4915112345678", "type": "text", "text": {"body": "Hi Lena"}})
    assert resp.status_code == 200
    assert resp.json()["contacts"] == [{"input": "+4915112345678", "wa_id": "4915112345678"}]
    assert emu.sent[0].phone_number_id == PNID_D
    read = d360.post(f"{server.base_url}/messages", json={
        "messaging_product": "whatsapp", "status": "read", "message_id": emu.inbound[0]["id"]})
    assert read.json() == {"success": True}
    assert_error(d360.post(f"{server.base_url}/messages", json={
        "messaging_product": "whatsapp", "to": "+4915199999999", "type": "text", "text": {"body": "x"}}), 131047)


@pytest.mark.parametrize("headers", [{}, {"D360-API-KEY": "wrong"}, {"Authorization": f"Bearer {TOKEN}"}])
def test_360dialog_needs_its_own_key(server, headers):
    resp = requests.post(f"{server.base_url}/messages", json={"messaging_product": "whatsapp"}, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["meta"]["success"] is False


def test_360dialog_number_is_not_reachable_through_graph(server, api):
    assert_error(api.post(f"{server.graph_url}/{PNID_D}/messages", json=text()), 100)


def test_360dialog_media_url_needs_the_host_rewrite(emu, server, d360):
    media_id = emu.customer(PNID_D, "4915112345678").send_audio(b"OggS voice")["audio"]["id"]
    info = d360.get(f"{server.base_url}/{media_id}").json()
    assert info["url"].startswith("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=")
    rewritten = server.base_url + info["url"][len("https://lookaside.fbsbx.com"):]
    got = d360.get(rewritten)
    assert got.status_code == 200 and got.content == b"OggS voice"
    assert requests.get(rewritten, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    uploaded = d360.post(f"{server.base_url}/media", data={"messaging_product": "whatsapp"},
                         files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}).json()["id"]
    assert d360.delete(f"{server.base_url}/{uploaded}").json() == {"success": True}
    assert_error(d360.get(f"{server.base_url}/{uploaded}"), 100)


def test_360dialog_templates(emu, server, d360):
    body = d360.get(f"{server.base_url}/v1/configs/templates").json()
    assert body["total"] == 1 and body["count"] == 1 and body["offset"] == 0
    assert body["waba_templates"][0]["name"] == "d360_hello"
    created = d360.post(f"{server.base_url}/v1/configs/templates", json={
        "name": "d360_bye", "language": "de", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Tschuess"}]}).json()
    assert created["status"] == "PENDING"
    page = d360.get(f"{server.base_url}/v1/configs/templates",
                    params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [t["name"] for t in page["waba_templates"]] == ["d360_bye"]
    filtered = d360.get(f"{server.base_url}/v1/configs/templates",
                        params={"filters": json.dumps({"status": "PENDING"})}).json()
    assert [t["name"] for t in filtered["waba_templates"]] == ["d360_bye"]


def test_360dialog_webhooks_carry_custom_headers_not_a_meta_signature(emu, server, d360, receiver):
    resp = d360.post(f"{server.base_url}/v1/configs/webhook", json={
        "url": f"{receiver.url}/webhooks/whatsapp/d360-new", "headers": {"X-Channel-Token": "t0k"}})
    assert resp.json() == {"url": f"{receiver.url}/webhooks/whatsapp/d360-new"}
    emu.customer(PNID_D, "4915112345678").send_text("Hallo")
    emu.flush()
    [req] = receiver.requests
    assert req.path == "/webhooks/whatsapp/d360-new"
    assert req.headers["X-Channel-Token"] == "t0k"
    assert "X-Hub-Signature-256" not in req.headers
    assert req.json()["object"] == "whatsapp_business_account"


# -- webhook driver --------------------------------------------------------------------


def test_driver_signs_the_exact_bytes_it_sends(emu, receiver):
    emu.customer(PNID, ANA, name="Zoë").send_text("Café? see https://shop.example/p/1 \U0001f600")
    [delivery] = emu.flush()
    [req] = receiver.requests
    assert req.body == delivery.body
    expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Hub-Signature-256"] == expected
    assert req.headers["Content-Type"] == "application/json"
    raw = req.body.decode("ascii")  # escaped unicode: pure ASCII on the wire
    assert "Caf\\u00e9" in raw and "Zo\\u00eb" in raw and "\\ud83d\\ude00" in raw
    assert "https:\\/\\/shop.example\\/p\\/1" in raw
    # re-serialising the parsed body gives other bytes: a hub must hash what it received
    assert json.dumps(json.loads(req.body)).encode() != req.body
    assert json.loads(req.body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] == \
        "Café? see https://shop.example/p/1 \U0001f600"


def test_encode_body_options():
    assert encode_body({"u": "a/b", "t": "é"}) == b'{"u":"a\\/b","t":"\\u00e9"}'
    assert encode_body({"u": "a/b"}, escape_slashes=False) == b'{"u":"a/b"}'


def test_batching_merges_entries_changes_and_messages(clock, sleeps, receiver):
    emu = make_emulator(clock, sleeps, receiver, batch_size=10)
    emu.add_number(phone_number_id="2200000000000005", waba_id=WABA, display_phone_number="15550005555",
                   token=TOKEN, app_secret=SECRET, webhook_url=emu.numbers[PNID].webhook_url)
    users = [emu.customer(PNID, f"1555100{i:04d}", name=f"U{i}") for i in range(12)]
    other = emu.customer("2200000000000005", ANA)
    for u in users[:6]:
        u.send_text("hi")
    other.send_text("to the second number")
    for u in users[6:]:
        u.send_text("hi")
    posts = emu.flush()
    assert [len(p.updates) for p in posts] == [10, 3]
    first = posts[0].payload()
    assert len(first["entry"]) == 1 and first["entry"][0]["id"] == WABA
    changes = first["entry"][0]["changes"]
    assert [c["value"]["metadata"]["phone_number_id"] for c in changes] == [PNID, "2200000000000005"]
    assert len(changes[0]["value"]["messages"]) == 9 and len(changes[0]["value"]["contacts"]) == 9
    assert "time" not in first["entry"][0]
    assert sum(len(m) for m in [messages(receiver)]) == 13


def test_one_post_can_carry_several_wabas(clock, sleeps, receiver):
    emu = make_emulator(clock, sleeps, receiver, batch_size=100)
    hook = emu.numbers[PNID].webhook_url
    emu.add_number(phone_number_id="2200000000000007", waba_id="1100000000000007",
                   display_phone_number="15550007777", token="EAAG-7", app_secret=SECRET, webhook_url=hook)
    emu.customer(PNID, ANA).send_text("one")
    emu.customer("2200000000000007", BOB).send_text("two")
    emu.set_template_status(emu.template(WABA, "draft", "en"), "APPROVED")
    [post] = emu.flush()
    entries = post.payload()["entry"]
    assert [(e["id"], "time" in e) for e in entries] == [(WABA, False), ("1100000000000007", False), (WABA, True)]
    assert [e["changes"][0]["field"] for e in entries] == ["messages", "messages", "message_template_status_update"]


def test_batch_size_is_capped_at_1000():
    with pytest.raises(ValueError, match="1000"):
        WebhookDriver(clock=FakeClock(), batch_size=1001)
    WebhookDriver(clock=FakeClock(), batch_size=1000)


def test_big_batches_stay_under_the_cap(clock, sleeps, receiver):
    emu = make_emulator(clock, sleeps, receiver, batch_size=1000)
    ana = emu.customer(PNID, ANA)
    for i in range(1200):
        ana.send_text(f"m{i}")
    posts = emu.flush()
    assert [len(p.updates) for p in posts] == [1000, 200]
    assert len(messages(receiver)) == 1200


def test_duplicates_resend_a_share_of_updates(clock, sleeps, receiver):
    emu = make_emulator(clock, sleeps, receiver, duplicate_ratio=0.1, batch_size=7)
    sent_ids = [emu.customer(PNID, f"1555200{i:04d}").send_text("hi")["id"] for i in range(50)]
    emu.flush()
    got = [m["id"] for m in messages(receiver)]
    assert len(got) == 55 and set(got) == set(sent_ids)
    for wamid in sent_ids:  # a duplicate always comes after its original
        positions = [i for i, g in enumerate(got) if g == wamid]
        assert positions == sorted(positions)


def _reply_to(emu, api, server, users):
    for u in users:
        emu.open_window(PNID, u)
        assert send(api, server, text(u)).status_code == 200


def test_out_of_order_read_before_delivered(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, out_of_order_ratio=1.0)
    with emu.serve() as srv:
        _reply_to(emu, api, srv, [ANA, BOB])
    emu.flush()
    got = statuses(receiver)
    for m in emu.sent:
        assert [s["status"] for s in got if s["id"] == m.id] == ["sent", "read", "delivered"]
    assert all("pricing" in s for s in got if s["status"] == "delivered")


def test_skipped_delivered_moves_pricing_to_read(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver, skip_delivered_ratio=1.0)
    with emu.serve() as srv:
        _reply_to(emu, api, srv, [ANA])
    emu.flush()
    got = statuses(receiver)
    assert [s["status"] for s in got] == ["sent", "read"]
    assert got[1]["pricing"] == got[0]["pricing"]


def test_failed_after_delivered_for_a_multi_device_user(emu, server, api, receiver):
    emu.recipient(ANA, fail_after_delivery=131000)
    _reply_to(emu, api, server, [ANA])
    emu.flush()
    got = statuses(receiver)
    assert [s["status"] for s in got] == ["sent", "delivered", "failed"]
    assert got[2]["errors"][0]["code"] == 131000


def test_user_who_never_reads(emu, server, api, receiver):
    emu.recipient(ANA, reads=False)
    _reply_to(emu, api, server, [ANA])
    emu.flush()
    assert [s["status"] for s in statuses(receiver)] == ["sent", "delivered"]


def test_retry_on_non_200_with_the_compressed_schedule(emu, sleeps):
    replies = iter([Reply(500), Reply(202), Reply(200)])
    with Receiver(lambda _req, _n: next(replies)) as rx:
        emu.numbers[PNID].webhook_url = rx.url + "/hook"
        emu.customer(PNID, ANA).send_text("hi")
        [delivery] = emu.flush()
        assert [a.status for a in delivery.attempts] == [500, 202, 200]  # 202 is not success
        assert [a.answer for a in delivery.attempts] == ['{"ok":true}'] * 3
        assert [a.number for a in delivery.attempts] == [1, 2, 3]
        assert delivery.outcome == "delivered"
        assert len({r.body for r in rx.requests}) == 1  # the very same bytes each time
    assert DEFAULT_RETRY_DELAYS[0] == 0  # Meta retries immediately first...
    assert sleeps == [DEFAULT_RETRY_DELAYS[1]]  # ...then waits, longer each time


def test_delivery_is_dropped_after_the_schedule_and_can_be_redelivered(clock, sleeps):
    calls = []

    def transport(url, body, headers):
        calls.append(body)
        if len(calls) <= 3:
            raise requests.ConnectionError("connection refused")
        return 503 if len(calls) <= 4 else 200

    emu = WhatsAppEmulator(clock=clock, driver=WebhookDriver(clock=clock, transport=transport,
                                                             retry_delays=(1, 2, 4), sleep=sleeps.append))
    emu.add_number(phone_number_id=PNID, waba_id=WABA, display_phone_number="15550001111",
                   token=TOKEN, app_secret=SECRET, webhook_url="http://hub.invalid/wh")
    emu.customer(PNID, ANA).send_text("hi")
    [delivery] = emu.flush()
    assert delivery.outcome == "dropped"
    assert [a.status for a in delivery.attempts] == [None, None, None, 503]
    assert "ConnectionError" in delivery.attempts[0].error
    assert sleeps == [1, 2, 4]
    again = emu.driver.redeliver(delivery)
    assert again.outcome == "delivered" and again.body == delivery.body
    assert len(emu.driver.attempts) == 5


def test_flush_refuses_numbers_without_a_webhook_url(emu):
    emu.numbers[PNID].webhook_url = None
    emu.customer(PNID, ANA).send_text("hi")
    with pytest.raises(RuntimeError, match=PNID):
        emu.flush()
    assert len(emu.driver.pending) == 1  # nothing lost
    emu.driver.start()  # in the background the error is recorded, and stop() still returns
    emu.driver.stop()
    assert isinstance(emu.driver.errors[0], RuntimeError) and len(emu.driver.pending) == 1


def _hub_app(secret=SECRET, verify_token="verify-me"):
    """A minimal stand-in for the hub's webhook endpoint."""
    app = Flask("fake_hub")
    app.received = []

    @app.get("/webhooks/whatsapp/main")
    def handshake():
        if request.args.get("hub.mode") == "subscribe" and request.args.get("hub.verify_token") == verify_token:
            return request.args["hub.challenge"], 200, {"Content-Type": "text/plain"}
        return "forbidden", 403

    @app.post("/webhooks/whatsapp/main")
    def receive():
        body = request.get_data()
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return "bad signature", 401
        app.received.append(json.loads(body))
        return "ok", 200

    return app


def test_transport_into_a_flask_test_client(emu):
    hub = _hub_app()
    emu.driver.transport = FlaskClientTransport(hub.test_client())
    emu.customer(PNID, ANA).send_location(52.52, 13.405, name="Office")
    [delivery] = emu.flush()
    assert delivery.outcome == "delivered"
    assert hub.received[0]["entry"][0]["changes"][0]["value"]["messages"][0]["location"]["name"] == "Office"
    wrong = emu.driver.post_payload(emu.numbers[PNID], {"object": "whatsapp_business_account", "entry": []},
                                    app_secret="not-the-secret")
    assert wrong.outcome == "dropped" and [a.status for a in wrong.attempts] == [401]
    raw = emu.driver.post_payload(emu.numbers[PNID], b'{"object":"whatsapp_business_account","entry":[]}')
    assert raw.outcome == "delivered" and hub.received[-1] == {"object": "whatsapp_business_account", "entry": []}


def test_verification_handshake(emu):
    emu.driver.transport = FlaskClientTransport(_hub_app().test_client())
    number = emu.numbers[PNID]
    ok = emu.driver.verify(number, challenge="1158201444")
    assert ok.ok and ok.status == 200 and ok.body == "1158201444"
    assert "hub.mode=subscribe" in ok.url and "hub.verify_token=verify-me" in ok.url
    bad = emu.driver.verify(number, verify_token="guess")
    assert not bad.ok and bad.status == 403


def test_verification_handshake_over_http(emu):
    hub = _hub_app()
    with Receiver(lambda req, _n: Reply(200, body=req.path.split("hub.challenge=")[1].split("&")[0].encode())) as rx:
        emu.numbers[PNID].webhook_url = rx.url + "/webhooks/whatsapp/main"
        assert emu.driver.verify(emu.numbers[PNID], challenge="42").ok
    assert hub  # the Flask stand-in is only used by the other handshake test


def test_background_delivery(clock, sleeps, receiver, api):
    emu = make_emulator(clock, sleeps, receiver)
    with emu.serve(auto_deliver=True) as srv:
        assert emu.driver.running
        emu.customer(PNID, ANA).send_text("hi")
        assert send(api, srv, text()).status_code == 200
        assert emu.driver.wait_idle(10)
        assert len(receiver.requests) == 4  # the message, sent, delivered, read
    assert not emu.driver.running


# -- emulated customers ----------------------------------------------------------------


def test_every_inbound_type_has_meta_s_shape(emu, receiver, clock):
    ana = emu.customer(PNID, ANA, name="Ana Souza")
    out = "wamid.OUT1"
    items = [
        ana.send_text("Hello", reply_to=out),
        ana.send_text("fwd", forwarded=True),
        ana.send_image(caption="c"), ana.send_audio(), ana.send_video(), ana.send_document(filename="f.pdf"),
        ana.send_sticker(animated=True),
        ana.send_location(52.52, 13.405, name="Office", address="Street 1", url="https://maps.example/x"),
        ana.send_contacts(),
        ana.reply_button(out, "confirm", "Confirm"),
        ana.reply_list(out, "express", "Express", "1-2 days"),
        ana.reply_flow(out, {"flow_token": "abc", "rating": "4"}),
        ana.press_template_button(out, "accept_42", "Accept"),
        ana.react(out, "\U0001f44d"),
        ana.react(out, ""),
        ana.send_order(),
        ana.send_unsupported("poll"),
        ana.change_number("15559990000"),
        ana.send_from_ad("Info please?"),
        ana.send("revoke", {"original_message_id": "wamid.A1"}),
    ]
    emu.flush()
    posted = messages(receiver)
    assert [m["id"] for m in posted] == [i["id"] for i in items]
    assert len({m["id"] for m in posted}) == len(items)
    assert all(m["from"] == ANA and m["timestamp"] == str(int(clock().timestamp())) for m in posted)
    by_type = {}
    for m in posted:
        by_type.setdefault(m["type"], []).append(m)
    assert by_type["text"][0]["context"] == {"from": "15550001111", "id": out}
    assert by_type["text"][1]["context"] == {"forwarded": True}
    assert by_type["audio"][0]["audio"]["voice"] is True
    assert by_type["document"][0]["document"]["filename"] == "f.pdf"
    assert by_type["sticker"][0]["sticker"]["animated"] is True
    assert by_type["location"][0]["location"]["latitude"] == 52.52
    assert by_type["contacts"][0]["contacts"][0]["name"]["formatted_name"] == "Jo Bloggs"
    kinds = [m["interactive"]["type"] for m in by_type["interactive"]]
    assert kinds == ["button_reply", "list_reply", "nfm_reply"]
    assert json.loads(by_type["interactive"][2]["interactive"]["nfm_reply"]["response_json"])["flow_token"] == "abc"
    assert by_type["button"][0]["button"] == {"payload": "accept_42", "text": "Accept"}
    assert [r["reaction"]["emoji"] for r in by_type["reaction"]] == ["\U0001f44d", ""]
    assert by_type["order"][0]["order"]["product_items"][0]["quantity"] == 2
    assert by_type["unsupported"][0]["errors"][0]["code"] == 131051
    assert by_type["system"][0]["system"]["wa_id"] == "15559990000"
    assert by_type["text"][2]["referral"]["source_type"] == "ad" and "ctwa_clid" in by_type["text"][2]["referral"]
    assert by_type["revoke"][0]["revoke"] == {"original_message_id": "wamid.A1"}
    values = [c["value"] for b in receiver.bodies() for e in b["entry"] for c in e["changes"]]
    system_value = next(v for v in values if v["messages"][0]["type"] == "system")
    assert "contacts" not in system_value
    assert values[0]["contacts"][0]["profile"] == {"name": "Ana Souza"}
    assert values[0]["contacts"][0]["user_id"].startswith("US.")  # 2026: BSUIDs everywhere


def test_username_only_user_has_no_phone_in_webhooks(emu, receiver):
    user = emu.customer(PNID, None, username="ana.s", name="Ana")
    msg = user.send_text("hi")
    assert "from" not in msg and msg["from_user_id"] == user.user_id
    emu.flush()
    contact = receiver.bodies()[0]["entry"][0]["changes"][0]["value"]["contacts"][0]
    assert contact == {"profile": {"name": "Ana", "username": "ana.s"}, "user_id": user.user_id}
    assert emu.window_open(PNID, user.user_id)


def test_bsuids_only_appear_from_april_2026(receiver, sleeps):
    clock = FakeClock(datetime(2025, 9, 1, tzinfo=timezone.utc))
    emu = make_emulator(clock, sleeps, receiver)
    msg = emu.customer(PNID, ANA, name="Ana").send_text("hi")
    assert "from_user_id" not in msg
    emu.flush()
    assert receiver.bodies()[0]["entry"][0]["changes"][0]["value"]["contacts"] == [
        {"profile": {"name": "Ana"}, "wa_id": ANA}]


def test_reply_to_a_click_to_whatsapp_lead_starts_a_free_entry_point(emu, server, api, receiver, clock):
    emu.customer(PNID, ANA).send_from_ad()
    clock.advance(3600)
    assert send(api, server, text()).status_code == 200
    clock.advance(30 * 3600)  # window closed, FEP (72 h from the reply) still open
    promo = template(name="promo", lang="en", components=[{"type": "body", "parameters": [{"type": "text", "text": "5%"}]}])
    assert send(api, server, promo).status_code == 200
    clock.advance(42 * 3600)  # 73 h after the reply: FEP over, billed normally
    assert send(api, server, promo).status_code == 200
    emu.flush()
    sent = [s for s in statuses(receiver) if s["status"] == "sent"]
    assert [s["pricing"]["type"] for s in sent] == ["free_entry_point", "free_entry_point", "regular"]
    assert sent[0]["pricing"]["category"] == "referral_conversion"
    assert sent[0]["conversation"]["origin"]["type"] == "referral_conversion"
    assert sent[0]["conversation"]["id"] == sent[1]["conversation"]["id"]
    assert "conversation" not in sent[2]


@pytest.mark.parametrize("at, is_template, category, csw, fep, expected", [
    ("2025-03-01", False, None, True, False, {"billable": False, "pricing_model": "CBP", "category": "service"}),
    ("2024-06-01", False, None, True, False, {"billable": True, "pricing_model": "CBP", "category": "service"}),
    ("2025-03-01", True, "MARKETING", False, False, {"billable": True, "pricing_model": "CBP", "category": "marketing"}),
    ("2025-08-01", False, None, True, False,
     {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}),
    ("2025-08-01", True, "UTILITY", True, False,
     {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "utility"}),
    ("2025-08-01", True, "UTILITY", False, False,
     {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}),
    ("2025-08-01", True, "AUTHENTICATION", True, False,
     {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "authentication"}),
    ("2026-10-01", False, None, True, False,
     {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "service"}),
    ("2026-10-01", True, "UTILITY", True, False,
     {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}),
    ("2026-10-01", True, "MARKETING", False, True,
     {"billable": False, "pricing_model": "PMP", "type": "free_entry_point", "category": "referral_conversion"}),
])
def test_status_pricing_follows_the_period(at, is_template, category, csw, fep, expected):
    when = datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
    assert pricing(when, is_template=is_template, category=category, csw_open=csw, fep_open=fep) == expected


def test_request_log(emu, server, api):
    api.get(f"{server.graph_url}/{PNID}")
    send(api, server, text(BOB))
    assert [(r.method, r.endpoint, r.status) for r in emu.requests] == [
        ("GET", "phone_number", 200), ("POST", "messages", 400)]
    assert emu.requests[1].body["to"] == f"+{BOB}"
