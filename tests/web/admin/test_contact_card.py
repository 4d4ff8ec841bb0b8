"""The inbox's contact card: an operator corrects a contact's name and phone; the name
then stays against the channel's profile name, the CRMs get one contact.updated; bad
values are refused with the field's reason and nothing written; viewers may not edit."""
from __future__ import annotations

from sqlalchemy import select

from hub.models import Contact, Conversation, Event
from tests.support.admin import post, signed_in
from tests.support.telegram import fixture, make_bot_channel, post_update


def setup(runtime, client):
    _, key = make_bot_channel(runtime)
    post_update(client, key, fixture("message__text"))  # Ana on Telegram, no phone
    with runtime.db.scope() as s:
        conversation = s.scalars(select(Conversation)).one()
        return key, conversation.id, conversation.contact_id


def updates(runtime) -> list[dict]:
    with runtime.db.scope() as s:
        return [e.data for e in s.scalars(select(Event).where(Event.type == "contact.updated"))]


def test_an_operator_corrects_name_and_phone_and_the_name_stays(app, client, runtime):
    key, conversation_id, contact_id = setup(runtime, client)
    operator = signed_in(app, runtime, "operator")
    page = operator.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert f"/admin/inbox/{conversation_id}/contact" in page
    form = operator.get(f"/admin/inbox/{conversation_id}/contact").get_data(as_text=True)
    assert 'name="name"' in form and 'name="phone"' in form
    r = post(operator, f"/admin/inbox/{conversation_id}/contact", {"name": " Ana Paula ", "phone": "+49 151 0000 0001"},
             page=f"/admin/inbox/{conversation_id}/contact")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/admin/inbox/{conversation_id}")
    with runtime.db.scope() as s:
        contact = s.get(Contact, contact_id)
        assert (contact.name, contact.phone, contact.name_by_operator) == ("Ana Paula", "+4915100000001", True)
    [event] = updates(runtime)
    assert event["changes"]["name"]["new"] == "Ana Paula" and event["changes"]["phone"]["new"] == "+4915100000001"
    assert event["contact"]["name"] == "Ana Paula"
    # The customer writes again with the old profile name: the operator's name stays.
    post_update(client, key, fixture("message__text"))
    with runtime.db.scope() as s:
        assert s.get(Contact, contact_id).name == "Ana Paula"
    # Saving the same values again changes nothing and tells nobody.
    r = post(operator, f"/admin/inbox/{conversation_id}/contact", {"name": "Ana Paula", "phone": "+4915100000001"},
             page=f"/admin/inbox/{conversation_id}/contact")
    assert r.status_code == 302 and len(updates(runtime)) == 1


def test_bad_values_are_refused_with_their_reason_and_nothing_is_written(app, client, runtime):
    _, conversation_id, contact_id = setup(runtime, client)
    with runtime.db.scope() as s:
        before = (s.get(Contact, contact_id).name, s.get(Contact, contact_id).phone)
    operator = signed_in(app, runtime, "operator")
    page = f"/admin/inbox/{conversation_id}/contact"
    cases = [({"name": "   ", "phone": ""}, "the name cannot be blank"),
             ({"name": "Ana", "phone": "12"}, "not a phone number in international form"),
             ({"name": "x" * 300, "phone": ""}, "at most 256 characters")]
    for data, reason in cases:
        r = post(operator, page, data, page=page)
        assert r.status_code == 422, data
        assert reason in r.get_data(as_text=True)
    r = post(operator, page, {"name": "Ana", "phone": "12"}, page=page, headers={"Accept-Language": "ru"})
    assert r.status_code == 422 and "международном формате" in r.get_data(as_text=True)
    with runtime.db.scope() as s:
        contact = s.get(Contact, contact_id)
        assert (contact.name, contact.phone) == before and not contact.name_by_operator
    assert updates(runtime) == []


def test_a_viewer_cannot_edit_a_contact(app, client, runtime):
    _, conversation_id, contact_id = setup(runtime, client)
    viewer = signed_in(app, runtime, "viewer")
    assert viewer.get(f"/admin/inbox/{conversation_id}/contact").status_code == 403
    assert f"/admin/inbox/{conversation_id}/contact" not in viewer.get(
        f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert updates(runtime) == []
