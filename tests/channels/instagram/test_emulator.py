"""The Instagram Graph API emulator answers like Meta: error bodies, the windows, the
Send API's limits, the call rate limit, and signed webhooks."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import requests

from hub.channels.instagram.emulator import InstagramEmulator
from hub.platform.db import utcnow
from tests.support.clock import FakeClock


class Recorder:
    def __init__(self, status: int = 200):
        self.posts: list[tuple[str, bytes, dict]] = []
        self.status = status

    def __call__(self, url, body, headers):
        self.posts.append((url, body, dict(headers)))
        return type("Answer", (), {"status_code": self.status})()


@pytest.fixture
def world():
    clock = FakeClock(utcnow())
    recorder = Recorder()
    emu = InstagramEmulator(clock, transport=recorder, calls_per_second=3)
    account = emu.add_account("shop")
    emu.subscribe(account, "http://hub.test/webhooks/instagram/key")
    with emu.serve() as base:
        yield {"emu": emu, "account": account, "base": base, "clock": clock, "recorder": recorder,
               "auth": {"Authorization": f"Bearer {account.token}"}}


def send(w, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else w["auth"]
    return requests.post(f"{w['base']}/v25.0/{w['account'].id}/messages", json=body, headers=headers, timeout=5)


def body(text="hi", kind="RESPONSE", **extra):
    return {"recipient": {"id": "42"}, "messaging_type": kind, "message": {"text": text}, **extra}


def test_the_account_and_a_bad_token(world):
    r = requests.get(f"{world['base']}/v25.0/{world['account'].id}", params={"fields": "username"},
                     headers=world["auth"], timeout=5)
    assert r.json() == {"id": world["account"].id, "username": "shop"}
    r = requests.get(f"{world['base']}/v25.0/me", params={"fields": "username", "access_token": "nope"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["code"] == 190 and r.json()["error"]["fbtrace_id"]


def test_windows_limits_and_webhooks(world):
    emu, clock = world["emu"], world["clock"]
    assert send(world, body()).json()["error"]["error_subcode"] == 2018001  # nobody wrote yet
    mid = emu.customer(world["account"], "42").send_text("Hello \u00e9/")
    assert emu.flush() == 1
    url, raw, headers = world["recorder"].posts[0]
    assert b"\\u00e9\\/" in raw  # Meta's escaped rendering is what it signs
    assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(
        world["account"].app_secret.encode(), raw, hashlib.sha256).hexdigest()
    event = json.loads(raw)["entry"][0]["messaging"][0]
    assert event["message"] == {"mid": mid, "text": "Hello \u00e9/"} and event["sender"] == {"id": "42"}
    ok = send(world, body())
    assert ok.status_code == 200 and ok.json()["recipient_id"] == "42" and ok.json()["message_id"]
    assert send(world, body("x" * 1001)).json()["error"]["code"] == 100
    clock.advance(1.1)
    assert send(world, body(kind="MESSAGE_TAG", tag="CONFIRMED_EVENT_UPDATE")).json()["error"]["code"] == 100
    clock.now += timedelta(hours=25)
    assert send(world, body()).json()["error"]["error_subcode"] == 2018278
    assert send(world, body(kind="MESSAGE_TAG", tag="HUMAN_AGENT")).status_code == 200
    clock.now += timedelta(days=7)
    assert send(world, body(kind="MESSAGE_TAG", tag="HUMAN_AGENT")).json()["error"]["error_subcode"] == 2018278


def test_the_call_rate_limit(world):
    emu = world["emu"]
    emu.customer(world["account"], "42").send_text("hi")
    codes = [send(world, body()).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 400]
    world["clock"].advance(1.01)
    assert send(world, body()).status_code == 200


def test_a_refused_webhook_is_retried_on_the_next_flush(world):
    world["recorder"].status = 500
    world["emu"].customer(world["account"], "42").send_text("hi")
    assert world["emu"].flush(max_rounds=2) == 0
    world["recorder"].status = 200
    assert world["emu"].flush() == 1 and world["emu"].attempts == [500, 500, 200]
