"""The inbox's "Merge with…": an operator finds the other contact by name or phone,
merges, sees the person on the contact panel, and undoes the merge exactly; viewers may
not merge."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from hub.conversations.store import open_conversation, upsert_contact
from hub.models import Contact, Conversation, Event
from hub.models.contacts import ContactMerge
from tests.support.admin import post, signed_in
from tests.support.telegram import fixture, make_bot_channel, post_update

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def listed(response) -> str:
    """The found contacts' table of the merge page."""
    return response.get_data(as_text=True).split("<tbody>")[1].split("</tbody>")[0]


def setup(runtime, client):
    _, key = make_bot_channel(runtime)
    post_update(client, key, fixture("message__text"))  # Ana on Telegram, no phone
    with runtime.db.scope() as s:
        conversation_id = s.scalar(select(Conversation.id))
        tg = s.scalar(select(Contact.id).where(Contact.user_id == "tg:111222333"))
        wa = upsert_contact(s, wa_id="351912345678", user_id=None, name="Ana Souza WA", now=NOW).id
        upsert_contact(s, wa_id="4915100000009", user_id=None, name="Bruno", now=NOW)
    return conversation_id, tg, wa


def test_an_operator_merges_from_the_inbox_and_undoes_it(app, client, runtime):
    conversation_id, tg, wa = setup(runtime, client)
    operator = signed_in(app, runtime, "operator")
    page = operator.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert f"/admin/inbox/{conversation_id}/merge" in page and "No other contact of this person yet." in page
    found = listed(operator.get(f"/admin/inbox/{conversation_id}/merge?q=912345"))
    assert "Ana Souza WA" in found and "Bruno" not in found and "Ana Silva" not in found
    by_name = listed(operator.get(f"/admin/inbox/{conversation_id}/merge?q=bruno"))
    assert "Bruno" in by_name
    r = post(operator, f"/admin/inbox/{conversation_id}/merge", {"contact_id": str(wa)},
             page=f"/admin/inbox/{conversation_id}/merge?q=ana")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        assert s.get(Contact, tg).person_id == wa
        merge = s.scalars(select(ContactMerge)).one()
        assert (merge.reason, merge.author_id is not None, merge.contact_id) == ("operator", True, tg)
        assert s.scalar(select(Conversation.contact_id).where(Conversation.id == conversation_id)) == tg
    page = operator.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert "Ana Souza WA" in page and "operator merge" in page and f"/merges/{merge.id}/undo" in page
    again = listed(operator.get(f"/admin/inbox/{conversation_id}/merge?q=ana"))
    assert "Ana Souza WA" not in again  # already the same person
    r = post(operator, f"/admin/inbox/{conversation_id}/merges/{merge.id}/undo", page=f"/admin/inbox/{conversation_id}")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        assert s.get(Contact, tg).person_id is None and s.get(Contact, tg).phone is None
        assert s.get(ContactMerge, merge.id).undone_at is not None
        # One of each (event ids are random UUIDs: they do not follow the order of the clicks).
        assert sorted(e.type for e in s.scalars(select(Event).where(Event.type.like("contact.%")))) == \
            ["contact.linked", "contact.unlinked"]
    page = operator.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert "No other contact of this person yet." in page and "/undo" not in page


def test_a_viewer_cannot_merge_and_a_bad_choice_merges_nothing(app, client, runtime):
    conversation_id, tg, wa = setup(runtime, client)
    viewer = signed_in(app, runtime, "viewer")
    assert viewer.get(f"/admin/inbox/{conversation_id}/merge?q=ana").status_code == 403
    page = viewer.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert f"/admin/inbox/{conversation_id}/merge" not in page
    operator = signed_in(app, runtime, "operator")
    r = post(operator, f"/admin/inbox/{conversation_id}/merge", {"contact_id": "nope"},
             page=f"/admin/inbox/{conversation_id}/merge")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        assert s.scalars(select(ContactMerge)).all() == []


def test_the_merge_page_speaks_russian(app, client, runtime):
    conversation_id, _, _ = setup(runtime, client)
    operator = signed_in(app, runtime, "operator")
    page = operator.get(f"/admin/inbox/{conversation_id}/merge?q=ana", headers={"Accept-Language": "ru"})
    assert "Объединить" in page.get_data(as_text=True)
