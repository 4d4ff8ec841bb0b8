"""Managers answer inside each CRM, end to end: 100 customers write through the WhatsApp
emulator, 100 chats open in the CRM's emulator (amoCRM amojo, Bitrix24 Open Lines,
HubSpot inbox); a manager replies in each chat, the emulator sends the reply to the hub
as the real CRM would (signed amojo hook, ONIMCONNECTORMESSAGEADD, signed
OUTGOING_CHANNEL_MESSAGE_CREATED), every tenth hook arrives twice, and each customer gets
exactly one WhatsApp message while its delivery status reaches the CRM's message. Run on
both databases (HUB_TEST_DB).

amoCRM takes the longest (about 30 s) and cannot take less at its pace: amojo has no
batch method, so 100 chat messages and 100 delivery statuses are 200 requests, which the
connector holds to the account's 7 a second (README, "Chats API"). Bitrix24 sends 50
messages and all statuses of a wave in one request; HubSpot's 200 fit its burst."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import ConnectorRecord, Contact, Conversation, Message
from tests.support.wa_emulator import wired, worker

CONVERSATIONS = 100

pytestmark = pytest.mark.slow


@dataclass
class CrmSide:
    """What the test needs of one CRM's emulator."""

    chats: Callable[[], int]
    reply: Callable[[int, str], Any]  # (hub conversation id, text) -> a handle; the hook is sent
    repeat: Callable[[Any], None]  # the same hook once more
    reported: Callable[[Any], bool]  # the WhatsApp delivery reached the CRM's message
    shown: Callable[[str], str]  # the text the customer sees for a reply typed in the CRM


def _webhook_key(runtime, cid: int) -> str:
    with runtime.db.scope() as session:
        return session.get(ConnectorRecord, cid).webhook_key


def _hook_transport(client, strip: str = ""):
    def post(url, body, headers):
        r = client.post(url.removeprefix(strip), data=body, headers=headers)
        return r.status_code, r.get_data(as_text=True)
    return post


@contextlib.contextmanager
def amocrm(runtime, client) -> Iterator[CrmSide]:
    from connectors.amocrm.chat import conversation_ref
    from connectors.amocrm.emulator import serve
    from connectors.amocrm.emulator_amojo import serve_amojo
    from tests.connectors.amocrm.conftest import add_connector, instance
    from tests.connectors.amocrm.test_chat import chat_settings

    with serve_amojo(transport=_hook_transport(client, "http://hub.test")) as amojo, serve() as amo:
        cid = add_connector(runtime, chat_settings(amo, amojo))
        amojo.emulator.hook_url = f"http://hub.test/webhooks/connectors/{_webhook_key(runtime, cid)}/:scope_id"
        assert instance(runtime, cid).check().ok

        def reply(conversation: int, text: str) -> dict[str, Any]:
            out = amojo.manager_reply(conversation_ref(conversation), text)
            assert out["status"] == 200, out["answer"]
            return out

        yield CrmSide(
            chats=lambda: len(amojo.emulator.chats), reply=reply,
            repeat=lambda h: amojo.post_hook(h["body"]),
            reported=lambda h: 1 in [s["status"] for s in amojo.messages[h["id"]]["statuses"]],
            shown=lambda text: text)


@contextlib.contextmanager
def bitrix24(runtime, client) -> Iterator[CrmSide]:
    from connectors.bitrix24 import emulator
    from tests.connectors.bitrix24.test_openlines import set_up

    with emulator.serve() as portal:
        p = portal.portal
        # The portal's queue server POSTs events to the hub (the Flask test client here).
        p.post = lambda url, data, timeout: client.post(urlsplit(url).path, data=data)
        set_up(runtime, portal)

        def reply(conversation: int, text: str) -> tuple[int, dict[str, Any]]:
            mid = p.operator_reply(str(conversation), text)
            queued = list(p.outbox)
            assert p.dispatch_events() == [200]
            return mid, queued[0]

        def repeat(handle: tuple[int, dict[str, Any]]) -> None:
            p.outbox.append(handle[1])
            assert p.dispatch_events() == [200]

        yield CrmSide(
            chats=lambda: len(p.ol.chats), reply=reply, repeat=repeat,
            reported=lambda h: p.ol.messages[h[0]].get("reported", []).count("delivered") == 1,
            shown=lambda text: f"*Olga Sales:*\n{text}")


@contextlib.contextmanager
def hubspot(runtime, client) -> Iterator[CrmSide]:
    from connectors.hubspot import benchkit
    from tests.connectors.hubspot.conftest import make_connector
    from tests.connectors.hubspot.test_inbox import inbox_settings, instance

    with benchkit.start_emulator(per_10_seconds=250) as emu:
        emu.inbox.inbox.transport = _hook_transport(client)
        cid = make_connector(runtime, emu, **inbox_settings(emu))
        assert instance(runtime, cid).check().ok

        def reply(conversation: int, text: str) -> dict[str, Any]:
            out = emu.inbox.agent_reply(str(conversation), text)
            assert out["status"] == 200, out["answer"]
            return out

        yield CrmSide(
            chats=lambda: len(emu.inbox.threads()), reply=reply,
            repeat=lambda h: emu.inbox.post_hook(h["body"]),
            reported=lambda h: "SENT" in [s["statusType"] for s in emu.inbox.statuses(h["id"])],
            shown=lambda text: text)


CRMS = {"amocrm": amocrm, "bitrix24": bitrix24, "hubspot": hubspot}


@pytest.mark.parametrize("kind", sorted(CRMS))
def test_manager_replies_in_the_crm_reach_each_customer_once(client, runtime, kind):
    # The WhatsApp emulator on the wall clock: its 80 messages a second are the sender's.
    with wired(runtime, client, utcnow) as w, CRMS[kind](runtime, client) as crm:
        emu, number = w["emu"], w["number"]
        # Customers who do not send read receipts: one status (delivered) per reply, so
        # amojo's and HubSpot's one-request-per-status stay within a few seconds at their
        # limits (read receipts are followed in each connector's own tests).
        people = [emu.customer(number, f"4917{10000000 + i:08d}", name=f"Kunde {i}", reads=False)
                  for i in range(CONVERSATIONS)]
        for i, person in enumerate(people):
            person.send_text(f"Hello, this is customer {i}")
        emu.flush()
        wk = worker(runtime)
        wk.drain()
        assert crm.chats() == CONVERSATIONS

        with runtime.db.scope() as session:
            by_phone = dict(session.execute(select(Contact.wa_id, Conversation.id).join(
                Conversation, Conversation.contact_id == Contact.id)).all())
        handles = {p.wa_id: crm.reply(by_phone[p.wa_id], f"Answer for {p.wa_id}") for p in people}
        for wa_id in sorted(handles)[::10]:
            crm.repeat(handles[wa_id])  # the CRM (or a proxy) delivers the hook again
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            wk.drain()
            emu.flush()  # statuses (delivered, read) back to the hub
            if len(emu.sent) >= CONVERSATIONS and all(crm.reported(h) for h in handles.values()):
                break
            time.sleep(0.05)
        wk.drain()
        emu.flush()

        for person in people:
            assert [s.body["text"]["body"] for s in emu.sent_to(person.wa_id)] == [
                crm.shown(f"Answer for {person.wa_id}")]
        assert len(emu.sent) == CONVERSATIONS
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Message).where(
                Message.direction == "out")) == CONVERSATIONS
        assert [wa_id for wa_id, h in handles.items() if not crm.reported(h)] == []
