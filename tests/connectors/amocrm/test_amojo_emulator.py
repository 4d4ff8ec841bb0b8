"""The amojo emulator checks requests exactly as amoCRM documents it and keeps chats."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

from connectors.amocrm import amojo
from connectors.amocrm.emulator_amojo import ACCOUNT_ID, CHANNEL_ID, CHANNEL_SECRET, serve_amojo


def post(server, path, body, *, secret=CHANNEL_SECRET, when=None, tamper=None):
    data = amojo.encode(body)
    headers = amojo.signed_headers(secret, "POST", path, data, amojo.rfc2822(when or datetime.now(timezone.utc)))
    if tamper:
        headers.update(tamper)
    return requests.post(server.base_url + path, data=data, headers=headers, timeout=5)


def message(msgid="wamid.1", conv="wa-conv-1", text="Hello"):
    return {"event_type": "new_message", "payload": {
        "timestamp": 1795607998, "msec_timestamp": 1795607998000, "msgid": msgid, "conversation_id": conv,
        "sender": {"id": "wa-contact-1", "name": "Ana", "profile": {"phone": "+15557654321"}},
        "message": {"type": "text", "text": text}, "silent": False}}


def test_signature_date_and_md5_are_checked():
    with serve_amojo() as server:
        path = f"/v2/origin/custom/{CHANNEL_ID}/connect"
        body = {"account_id": ACCOUNT_ID, "title": "WhatsApp", "hook_api_version": "v2"}
        bad = post(server, path, body, secret="wrong-secret")
        assert bad.status_code == 403 and bad.json() == {"error": "invalid signature"}
        stale = post(server, path, body, when=datetime.now(timezone.utc) - timedelta(minutes=16))
        assert stale.status_code == 403 and "expired" in stale.json()["error"]
        md5 = post(server, path, body, tamper={"Content-MD5": amojo.content_md5(b"{}")})
        assert md5.status_code == 403 and "Content-MD5" in md5.json()["error"]
        assert server.connected == {}
        good = post(server, path, body)
        assert good.status_code == 200 and good.json()["scope_id"] == f"{CHANNEL_ID}_{ACCOUNT_ID}"
        assert post(server, "/v2/origin/custom/no-such-channel/connect", body).status_code == 404


def test_messages_once_per_msgid_statuses_and_the_page():
    with serve_amojo() as server:
        post(server, f"/v2/origin/custom/{CHANNEL_ID}/connect",
             {"account_id": ACCOUNT_ID, "title": "WhatsApp", "hook_api_version": "v2"})
        scope = server.scope_id
        first = post(server, f"/v2/origin/custom/{scope}", message())
        again = post(server, f"/v2/origin/custom/{scope}", message())
        assert first.status_code == again.status_code == 200
        assert first.json()["new_message"]["msgid"] == again.json()["new_message"]["msgid"]
        assert len(server.messages) == 1 and len(server.chats) == 1
        bad = post(server, f"/v2/origin/custom/{scope}", {"event_type": "new_message", "payload": {"msgid": "x"}})
        assert bad.status_code == 400
        amojo_id = first.json()["new_message"]["msgid"]
        status_path = f"/v2/origin/custom/{scope}/{amojo_id}/delivery_status"
        assert post(server, status_path, {"msgid": amojo_id, "delivery_status": -1}).status_code == 400
        assert post(server, status_path, {"msgid": amojo_id, "delivery_status": 2}).status_code == 200
        assert server.messages[amojo_id]["statuses"] == [{"status": 2, "error_code": None, "error": None}]
        server.disconnect()
        assert post(server, f"/v2/origin/custom/{scope}", message("wamid.2")).status_code == 404
        page = requests.get(server.base_url + "/", timeout=5)
        assert page.status_code == 200 and "Ana" in page.text and "Hello" in page.text and "[read]" in page.text
