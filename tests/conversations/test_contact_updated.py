"""contact.updated: a name, phone or username the hub learns after the contact exists
(a WhatsApp profile name, a Telegram user's own shared phone, an operator's edit) is one
event with the old and new values; the same webhook again, or the same values again,
emit nothing."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from hub.models import Contact, Event
from tests.support import telegram as tg
from tests.support.whatsapp import fixture, make_channel, post_signed


def updates(runtime) -> list[Event]:
    with runtime.db.scope() as session:
        rows = session.scalars(select(Event).where(Event.type == "contact.updated").order_by(Event.created_at,
                                                                                             Event.id)).all()
        for row in rows:
            session.expunge(row)
        return rows


def whatsapp_text(name: str, wamid: str) -> bytes:
    body = json.loads(fixture("text__plain"))
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["profile"]["name"] = name
    value["messages"][0]["id"] = wamid
    return json.dumps(body).encode()


def test_a_new_whatsapp_profile_name_is_one_event_and_a_replay_none(client, runtime):
    _, key = make_channel(runtime)
    assert post_signed(client, key, whatsapp_text("Ana Souza", "wamid.A1")).status_code == 200
    assert updates(runtime) == []  # the contact was created with that name: nothing learned later
    renamed = whatsapp_text("Ana S. Pereira", "wamid.A2")
    assert post_signed(client, key, renamed).status_code == 200
    assert post_signed(client, key, renamed).status_code == 200  # Meta's retry of the same webhook
    assert post_signed(client, key, whatsapp_text("Ana S. Pereira", "wamid.A3")).status_code == 200
    (event,) = updates(runtime)
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == "15557654321")).one()
        assert contact.name == "Ana S. Pereira"
        assert event.data["changes"] == {"name": {"old": "Ana Souza", "new": "Ana S. Pereira"}}
        assert event.data["contact"]["id"] == contact.id and event.data["contact"]["name"] == "Ana S. Pereira"
        assert event.data["contact"]["phone"] == "+15557654321"
        assert event.ordering_key == f"contact:{contact.id}"


def share_own(phone: str, update_id: int) -> bytes:
    body = json.loads(tg.fixture("message__contact"))
    body["update_id"] = update_id
    body["message"]["message_id"] += update_id - 400000008
    body["message"]["contact"].update(user_id=111222333, phone_number=phone)
    return json.dumps(body).encode()


def test_a_telegram_users_own_shared_phone_is_learned_once(client, runtime):
    _, key = tg.make_bot_channel(runtime)
    assert tg.post_update(client, key, tg.fixture("message__text")).status_code == 200
    assert updates(runtime) == []
    shared = share_own("+351 919 999 999", 400000020)
    assert tg.post_update(client, key, shared).status_code == 200
    assert tg.post_update(client, key, shared).status_code == 200  # Telegram's repeat: same update_id
    assert tg.post_update(client, key, share_own("+351919999999", 400000021)).status_code == 200  # same phone
    events = updates(runtime)
    assert [e.data["changes"] for e in events] == [{"phone": {"old": None, "new": "+351919999999"}}]
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact).where(Contact.user_id == "tg:111222333")).one()
        assert contact.phone == "+351919999999" and contact.person_id is None
        assert events[0].data["contact"]["phone"] == "+351919999999"


def test_an_operators_edit_emits_only_what_changed(client, runtime, admin_headers):
    _, key = make_channel(runtime)
    assert post_signed(client, key, whatsapp_text("Ana Souza", "wamid.B1")).status_code == 200
    with runtime.db.scope() as session:
        contact_id = session.scalars(select(Contact.id)).one()
    r = client.patch(f"/api/v1/contacts/{contact_id}", json={"name": " Ana Souza (VIP) ", "phone": "+1 555 765 4321"},
                     headers=admin_headers)
    assert r.status_code == 200, r.json
    assert (r.json["name"], r.json["phone"]) == ("Ana Souza (VIP)", "+15557654321")
    again = client.patch(f"/api/v1/contacts/{contact_id}", json={"name": "Ana Souza (VIP)"}, headers=admin_headers)
    assert again.status_code == 200
    # WhatsApp goes on naming her by her profile: the operator's name stays, nothing to tell
    assert post_signed(client, key, whatsapp_text("Ana Souza", "wamid.B2")).status_code == 200
    (event,) = updates(runtime)
    assert event.data["changes"] == {"name": {"old": "Ana Souza", "new": "Ana Souza (VIP)"}}
    with runtime.db.scope() as session:
        assert session.get(Contact, contact_id).name == "Ana Souza (VIP)"


@pytest.mark.parametrize("body, field", [({}, "name"), ({"name": "  "}, "name"), ({"phone": "12"}, "phone"),
                                         ({"phone": "call me"}, "phone"), ({"name": "x" * 257}, "name")])
def test_a_bad_edit_is_a_422_naming_the_field_and_changes_nothing(client, runtime, admin_headers, body, field):
    _, key = make_channel(runtime)
    assert post_signed(client, key, whatsapp_text("Ana Souza", "wamid.C1")).status_code == 200
    with runtime.db.scope() as session:
        contact_id = session.scalars(select(Contact.id)).one()
    r = client.patch(f"/api/v1/contacts/{contact_id}", json=body, headers=admin_headers)
    assert r.status_code == 422 and field in json.dumps(r.json), r.json
    assert updates(runtime) == []
    assert client.patch("/api/v1/contacts/999999", json={"name": "A"}, headers=admin_headers).status_code == 404
