"""The operators' inbox: filters, the thread (media, lead source, CRM links), replies
inside the window and refused outside it, templates with variables and a preview,
assign and close."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.crm.links import DbLinkStore
from hub.models import Conversation, Message, Template, User
from tests.support.admin import make_user, post, signed_in
from tests.support.factories import webhook_connector
from tests.support.graph import JPEG, FakeGraph
from tests.support.whatsapp import WABA_ID, fixture, make_channel, post_signed

TEMPLATES = [
    ("order_update", "UTILITY", "APPROVED", "POSITIONAL", [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.io/t/{{1}}"}]}]),
    ("spring_sale", "MARKETING", "APPROVED", "NAMED", [{"type": "BODY", "text": "Hello {{first_name}}!"}]),
    ("paused_one", "MARKETING", "PAUSED", "POSITIONAL", [{"type": "BODY", "text": "Hi"}]),
]


@pytest.fixture
def conversation(app, runtime):
    """A customer wrote 5 minutes ago; the account has templates."""
    _, key = make_channel(runtime)
    with runtime.db.scope() as s:
        for name, category, status, fmt, comps in TEMPLATES:
            s.add(Template(waba_id=WABA_ID, name=name, language="en", status=status, category=category,
                           parameter_format=fmt, components=comps, created_at=utcnow(), updated_at=utcnow()))
    post_signed(app.test_client(), key, fixture("text__plain"))
    with runtime.db.scope() as s:
        conv = s.scalars(select(Conversation)).one()
        conv.last_inbound_at = utcnow() - timedelta(minutes=5)
        return conv.id


def close_window(runtime, conversation_id, hours=25):
    with runtime.db.scope() as s:
        s.get(Conversation, conversation_id).last_inbound_at = utcnow() - timedelta(hours=hours)


def outbound(runtime) -> list[Message]:
    with runtime.db.scope() as s:
        return list(s.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)))


def test_list_and_filters(app, runtime, conversation):
    operator = signed_in(app, runtime, "operator")
    page = operator.get("/admin/inbox").get_data(as_text=True)
    assert "Ana Souza" in page and "unassigned" in page
    assert "Ana Souza" in operator.get("/admin/inbox?view=unassigned").get_data(as_text=True)
    assert "Ana Souza" not in operator.get("/admin/inbox?view=mine").get_data(as_text=True)
    assert "Ana Souza" not in operator.get("/admin/inbox?view=closing").get_data(as_text=True)
    post(operator, f"/admin/inbox/{conversation}/assign", {"assignee_id": "me"}, page="/admin/")
    assert "Ana Souza" in operator.get("/admin/inbox?view=mine").get_data(as_text=True)
    assert "Ana Souza" not in operator.get("/admin/inbox?view=unassigned").get_data(as_text=True)
    close_window(runtime, conversation, hours=23)  # closes within the next hour
    closing = operator.get("/admin/inbox?view=closing").get_data(as_text=True)
    assert "Ana Souza" in closing and "closes in" in closing
    post(operator, f"/admin/inbox/{conversation}/close", {"reason": "done"}, page="/admin/")
    assert "Ana Souza" not in operator.get("/admin/inbox?view=open").get_data(as_text=True)
    assert "Ana Souza" in operator.get("/admin/inbox?view=closed").get_data(as_text=True)


def test_thread_shows_messages_lead_source_and_crm_links(app, runtime, conversation):
    connector = webhook_connector(runtime, "http://127.0.0.1:9/", name="amo-like")
    with runtime.db.scope() as s:
        conv = s.get(Conversation, conversation)
        conv.lead_source = {"kind": "tracked_link", "utm_source": "google", "utm_campaign": "spring",
                            "campaign": "Spring sale", "referral": None}
        contact_id = conv.contact_id
    DbLinkStore(runtime.db, connector).put("conversation", str(conversation), "lead", "9001")
    DbLinkStore(runtime.db, connector).put("contact", str(contact_id), "contact", "4242")
    viewer = signed_in(app, runtime, "viewer")
    page = viewer.get(f"/admin/inbox/{conversation}").get_data(as_text=True)
    with runtime.db.scope() as s:
        text = s.scalar(select(Message.text).where(Message.conversation_id == conversation))
    assert text and text in page
    assert "Spring sale" in page and "google" in page and "tracked_link" in page
    assert "amo-like" in page and "#9001" in page and "#4242" in page
    assert "can read conversations but not answer" in page and 'id="send-reply"' not in page


def test_reply_inside_the_window_is_queued(app, runtime, conversation):
    operator = signed_in(app, runtime, "operator")
    page = operator.get(f"/admin/inbox/{conversation}").get_data(as_text=True)
    assert 'id="reply-text"' in page and "disabled" not in page.split('id="reply-text"')[1].split(">")[0]
    r = post(operator, f"/admin/inbox/{conversation}/reply", {"text": "On its way!"}, page="/admin/")
    assert r.status_code == 302
    [message] = outbound(runtime)
    assert (message.text, message.status, message.type) == ("On its way!", "queued", "text")
    with runtime.db.scope() as s:
        assert message.author_id == s.scalar(select(User.id).where(User.email == "operator@example.com"))
    thread = operator.get(r.headers["Location"]).get_data(as_text=True)
    assert "Reply queued" in thread and "On its way!" in thread


def test_reply_outside_the_window_is_disabled_and_refused_with_the_reason(app, runtime, conversation):
    operator = signed_in(app, runtime, "operator")
    close_window(runtime, conversation)
    page = operator.get(f"/admin/inbox/{conversation}").get_data(as_text=True)
    assert "Replies are off:" in page and "the 24-hour window closed" in page
    assert "disabled" in page.split('id="reply-text"')[1].split(">")[0]
    assert "order_update" in page and "spring_sale" in page and "paused_one" not in page  # usable only
    # a page left open before the window closed still cannot send
    r = post(operator, f"/admin/inbox/{conversation}/reply", {"text": "Hello?"}, page="/admin/")
    body = r.get_data(as_text=True)
    assert r.status_code == 409 and 'id="reply-error"' in body and "the 24-hour window is closed" in body
    assert outbound(runtime) == []
    empty = post(operator, f"/admin/inbox/{conversation}/reply", {"text": "  "}, page="/admin/")
    assert empty.status_code == 422 and "Write a message first." in empty.get_data(as_text=True)


def test_template_with_variables_preview_and_send(app, runtime, conversation):
    operator = signed_in(app, runtime, "operator")
    close_window(runtime, conversation)
    with runtime.db.scope() as s:
        tid = s.scalar(select(Template.id).where(Template.name == "order_update"))
    fields = operator.get(f"/admin/inbox/{conversation}/template?template_id={tid}").get_data(as_text=True)
    for name in ('name="header"', 'name="body_1"', 'name="body_2"', 'name="button_0"'):
        assert name in fields
    assert "Order {{1}}" in fields  # the untouched preview shows the placeholders
    preview = post(operator, f"/admin/inbox/{conversation}/template/preview",
                   {"template_id": str(tid), "header": "#42", "body_1": "Ana", "body_2": ""}, page="/admin/")
    text = preview.get_data(as_text=True)
    assert "Hi Ana, order {{2}} has shipped." in text and "Order #42" in text and 'class="error' in text
    # sending with a variable missing: refused beside the form, nothing queued
    r = post(operator, f"/admin/inbox/{conversation}/template/send",
             {"template_id": str(tid), "header": "#42", "body_1": "Ana", "body_2": "", "button_0": "42"},
             page="/admin/")
    assert r.status_code == 422 and "an empty value is not allowed" in r.get_data(as_text=True)
    assert outbound(runtime) == []
    r = post(operator, f"/admin/inbox/{conversation}/template/send",
             {"template_id": str(tid), "header": "#42", "body_1": "Ana", "body_2": "42", "button_0": "42"},
             page="/admin/")
    assert r.status_code == 302, r.get_data(as_text=True)
    [message] = outbound(runtime)
    assert message.template_name == "order_update" and message.type == "template"
    assert "Hi Ana, order 42 has shipped." in message.text
    components = message.request["template"]["components"]
    assert {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "42"}]} \
        in components


def test_named_template_and_opt_out(app, runtime, conversation):
    operator = signed_in(app, runtime, "operator")
    with runtime.db.scope() as s:
        tid = s.scalar(select(Template.id).where(Template.name == "spring_sale"))
        from hub.models import Contact
        s.scalars(select(Contact)).one().opted_out_at = utcnow()
    r = post(operator, f"/admin/inbox/{conversation}/template/send", {"template_id": str(tid), "body_first_name": "Ana"},
             page="/admin/")
    assert r.status_code == 409 and "asked not to receive marketing messages" in r.get_data(as_text=True)
    assert outbound(runtime) == []


def test_assign_and_close(app, runtime, conversation):
    admin = signed_in(app, runtime, "admin")
    olga = make_user(runtime, "operator", "olga@example.com", name="Olga")
    make_user(runtime, "viewer", "vic@example.com")
    page = admin.get(f"/admin/inbox/{conversation}").get_data(as_text=True)
    assert ">Olga</option>" in page and "vic@example.com" not in page  # viewers take no conversations
    post(admin, f"/admin/inbox/{conversation}/assign", {"assignee_id": str(olga)}, page="/admin/")
    with runtime.db.scope() as s:
        assert s.get(Conversation, conversation).assignee_id == olga
    post(admin, f"/admin/inbox/{conversation}/assign", {"assignee_id": ""}, page="/admin/")
    with runtime.db.scope() as s:
        assert s.get(Conversation, conversation).assignee_id is None
    post(admin, f"/admin/inbox/{conversation}/close", {"reason": "sold"}, page="/admin/")
    with runtime.db.scope() as s:
        assert s.get(Conversation, conversation).status == "closed"
    assert "Conversation closed." in admin.get(f"/admin/inbox/{conversation}").get_data(as_text=True)


def test_inbox_forms_need_csrf_and_an_operator(app, runtime, conversation):
    operator = signed_in(app, runtime, "operator")
    for url, data in ((f"/admin/inbox/{conversation}/reply", {"text": "Hi"}),
                      (f"/admin/inbox/{conversation}/assign", {"assignee_id": "me"}),
                      (f"/admin/inbox/{conversation}/close", {}),
                      (f"/admin/inbox/{conversation}/template/send", {"template_id": "1"})):
        assert operator.post(url, data=data).status_code == 400, url
    viewer = signed_in(app, runtime, "viewer")
    for url, data in ((f"/admin/inbox/{conversation}/reply", {"text": "Hi"}),
                      (f"/admin/inbox/{conversation}/assign", {"assignee_id": "me"}),
                      (f"/admin/inbox/{conversation}/close", {}),
                      (f"/admin/inbox/{conversation}/template/send", {"template_id": "1"})):
        assert post(viewer, url, data, page="/admin/").status_code == 403, url
    assert outbound(runtime) == []
    with runtime.db.scope() as s:
        conv = s.get(Conversation, conversation)
        assert (conv.status, conv.assignee_id) == ("open", None)


def test_media_is_fetched_for_the_signed_in_user(app, runtime):
    with FakeGraph() as graph:
        _, key = make_channel(runtime, api_base_url=graph.url, access_token=graph.token)
        post_signed(app.test_client(), key, fixture("image__caption"))
        with runtime.db.scope() as s:
            message_id = s.scalar(select(Message.id))
            conversation_id = s.scalar(select(Conversation.id))
        viewer = signed_in(app, runtime, "viewer")
        page = viewer.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
        assert f'src="/admin/media/{message_id}"' in page and "Broken part" in page
        r = viewer.get(f"/admin/media/{message_id}")
        assert r.status_code == 200 and r.data == JPEG and r.mimetype == "image/jpeg"
        assert r.headers["Content-Security-Policy"] == "sandbox"
        assert app.test_client().get(f"/admin/media/{message_id}").status_code == 302  # signed out
        graph.token = "revoked"
        assert viewer.get(f"/admin/media/{message_id}").status_code == 502
