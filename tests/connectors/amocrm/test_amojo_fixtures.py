"""One test per fixture in tests/fixtures/amocrm_amojo: the Chats API's documented
signatures, request bodies and answers through the connector's pure functions and client."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.amocrm import amojo, chat, chat_hooks
from connectors.base import InboundRequest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "amocrm_amojo"
CASES = sorted(FIXTURES.glob("*.json"))
SCOPE = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41_af9945ff-1490-4cad-807d-945c15d88bec"


class FakeResponse:
    def __init__(self, status: int, body):
        self.status_code = status
        self._body = body
        self.content = b"" if body is None else json.dumps(body).encode()
        self.text = self.content.decode()

    def json(self):
        return self._body


class FakeHttp:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def request(self, method, url, data=None, headers=None, **_):
        self.calls.append({"method": method, "url": url, "data": data, "headers": headers})
        return FakeResponse(200, self.answer)


def client(http) -> amojo.AmojoClient:
    return amojo.AmojoClient(base_url="https://amojo.amocrm.ru", channel_id="f90ba33d-c9d9-44da-b76c-c349b0ecbe41",
                             secret="5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189", http=http,
                             clock=lambda: datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc), timeout=5)


def check(case: dict) -> None:
    kind = case["kind"]
    if kind == "hook_signature":
        assert amojo.hook_signature(case["secret"], case["body"].encode()) == case["expected"]
        assert amojo.hook_signature_ok(case["secret"], case["body"].encode(), case["expected"].upper())
        assert not amojo.hook_signature_ok(case["secret"], case["body"].encode() + b" ", case["expected"])
    elif kind == "request_signature":
        body = case["body"].encode()
        assert amojo.content_md5(body) == case["expected_md5"]
        headers = amojo.signed_headers(case["secret"], case["method"], case["path"], body, case["date"])
        assert headers == {"Date": case["date"], "Content-Type": "application/json",
                           "Content-MD5": case["expected_md5"], "X-Signature": case["expected_signature"]}
        assert amojo.encode(json.loads(case["body"])) == body  # what the client sends is what it signs
    elif kind == "connect_answer":
        http = FakeHttp(case["body"])
        assert client(http).connect("af9945ff-1490-4cad-807d-945c15d88bec", "WhatsApp")["scope_id"] == \
            case["expected_scope_id"]
        call = http.calls[0]
        assert call["url"] == "https://amojo.amocrm.ru/v2/origin/custom/f90ba33d-c9d9-44da-b76c-c349b0ecbe41/connect"
        assert json.loads(call["data"]) == {"account_id": "af9945ff-1490-4cad-807d-945c15d88bec",
                                            "title": "WhatsApp", "hook_api_version": "v2"}
        assert call["headers"]["Date"] == "Wed, 25 Nov 2026 12:00:00 +0000"
        assert call["headers"]["X-Signature"] == amojo.request_signature(
            "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189", "POST", amojo.content_md5(call["data"]), "application/json",
            call["headers"]["Date"], "/v2/origin/custom/f90ba33d-c9d9-44da-b76c-c349b0ecbe41/connect")
    elif kind == "new_message":
        reply = case["data"]["message"].get("reply_to")
        assert chat.new_message(case["data"], {"msgid": reply} if reply else None) == case["expected"]
    elif kind == "new_message_answer":
        http = FakeHttp(case["body"])
        answer = client(http).send(SCOPE, {"event_type": "new_message", "payload": {}})
        assert answer["new_message"]["msgid"] == case["expected_msgid"]
        assert http.calls[0]["url"].endswith(f"/v2/origin/custom/{SCOPE}")
    elif kind == "delivery_status":
        http = FakeHttp(None)
        report = chat.status_report(case["message"])
        assert report is not None
        client(http).delivery_status(SCOPE, case["amojo_msgid"], *report)
        call = http.calls[0]
        assert call["url"] == "https://amojo.amocrm.ru" + case["expected_path"].replace("{scope_id}", SCOPE)
        assert json.loads(call["data"]) == case["expected"]
    elif kind == "hook":
        raw = json.dumps(case["body"], ensure_ascii=False).encode()
        request = InboundRequest(method="POST", url="https://hub.example/webhooks/connectors/k",
                                 path="/webhooks/connectors/k", query={}, form={}, body=raw,
                                 headers={"Content-Type": "application/json",
                                          "X-Signature": amojo.hook_signature(case["secret"], raw)})
        assert chat_hooks.is_chat_hook(request)
        parsed = chat_hooks.parse(request, case["secret"], "af9945ff-1490-4cad-807d-945c15d88bec")
        assert dataclasses.asdict(parsed) == case["expected"]
    else:  # pragma: no cover - a fixture nobody tests
        raise AssertionError(f"no test for fixture kind {kind!r}")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture(path: Path) -> None:
    check(json.loads(path.read_text()))


def test_every_fixture_kind_is_covered() -> None:
    kinds = {json.loads(p.read_text())["kind"] for p in CASES}
    assert kinds == {"hook_signature", "request_signature", "connect_answer", "new_message", "new_message_answer",
                     "delivery_status", "hook"}
