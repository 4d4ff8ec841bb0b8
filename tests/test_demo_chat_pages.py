"""`hub demo` in chat mode, per CRM: the connector is created in both modes, Test
connection wires the chat channel, the emulator's chat page (amoCRM chats, Bitrix24 Open
Lines, HubSpot inbox threads) is reachable and shows the customer's message, and a reply
typed in the page's form reaches the customer through the hub once."""
from __future__ import annotations

import html
import re
import socket

import pytest
import requests

from hub.app import create_app
from hub.platform.db import utcnow
from hub.demo import connect_crm, crm_emulator, demo_config
from hub.platform.runtime import Runtime
from tests.conftest import make_config
from tests.support.browser import LiveHub
from tests.support.wa_emulator import wired, worker

FORM = re.compile(r"<form method=['\"]post['\"] action=['\"]([^'\"]+)['\"]><input type=['\"]hidden['\"] "
                  r"name=['\"](\w+)['\"] value=['\"]([^'\"]*)['\"]>")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["amocrm", "bitrix24", "hubspot"])
def test_the_demo_shows_each_crms_chats_and_a_reply_there_reaches_whatsapp(database_url, tmp_path, kind):
    port = _free_port()
    runtime = Runtime.from_config(make_config(database_url, tmp_path, base_url=f"http://127.0.0.1:{port}"))
    app = create_app(runtime=runtime)
    try:
        with LiveHub(app, port=port), wired(runtime, app.test_client(), utcnow) as w, \
                crm_emulator(kind, chat=True) as crm:
            assert crm.settings["mode"] == "both"
            _, pages, checked = connect_crm(runtime, crm, now=utcnow())
            assert checked.ok, checked.message
            ((title, url),) = pages
            emu, number = w["emu"], w["number"]
            ana = emu.customer(number, "4915112345678", name="Ana Souza", reads=False)
            ana.send_text("Is the blue sofa still available?")
            emu.flush()
            worker(runtime).drain()
            page = requests.get(url, timeout=5)
            assert page.status_code == 200
            assert "Is the blue sofa still available?" in html.unescape(page.text)
            action, field, value = FORM.search(page.text).groups()
            base = url.split("/", 3)
            answer = requests.post(f"{base[0]}//{base[2]}{action}", data={field: html.unescape(value),
                                   "text": "Yes, it is!"}, timeout=10, allow_redirects=False)
            assert answer.status_code == 303
            for _ in range(3):
                worker(runtime).drain()
                emu.flush()
            assert [s.body["text"]["body"].rsplit("\n", 1)[-1] for s in emu.sent_to("4915112345678")] == [
                "Yes, it is!"]
    finally:
        runtime.db.dispose()


def test_the_demo_tells_the_crm_the_address_it_serves(tmp_path, database_url):
    config = make_config(database_url, tmp_path, web__host="0.0.0.0", web__port=8123)
    assert demo_config(config).base_url == "http://127.0.0.1:8123"
