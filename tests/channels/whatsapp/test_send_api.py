"""POST /api/v1/messages: what is refused before anything is sent, and why."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Message, Template
from tests.support.whatsapp import WABA_ID, fixture, make_channel, post_signed


@pytest.fixture
def conversation(client, runtime):
    channel_id, key = make_channel(runtime)
    with runtime.db.scope() as session:
        for name, category, status, body in [
            ("order_update", "UTILITY", "APPROVED", "Hi {{1}}, order {{2}} has shipped."),
            ("spring_sale", "MARKETING", "APPROVED", "Hello {{first_name}}!"),
            ("paused_one", "MARKETING", "PAUSED", "Hi"),
        ]:
            comps = [{"type": "BODY", "text": body}]
            if name == "order_update":
                comps = [{"type": "HEADER", "format": "IMAGE"}] + comps + [
                    {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.io/t/{{1}}"},
                                                    {"type": "QUICK_REPLY", "text": "Thanks"}]}]
            session.add(Template(waba_id=WABA_ID, name=name, language="en", status=status, category=category,
                                 parameter_format="NAMED" if name == "spring_sale" else "POSITIONAL",
                                 components=comps, created_at=utcnow(), updated_at=utcnow()))
    post_signed(client, key, fixture("text__plain"))
    with runtime.db.scope() as session:
        conv = session.scalars(select(Conversation)).one()
        conv.last_inbound_at = utcnow() - timedelta(minutes=5)  # the fixture's date is in the past
        return conv.id


def send(client, headers, **body):
    return client.post("/api/v1/messages", json=body, headers=headers)


def queued(runtime) -> int:
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out"))


def test_text_inside_the_window_is_queued(client, admin_headers, runtime, conversation):
    r = send(client, admin_headers, conversation_id=conversation, type="text", text={"body": "On its way!"})
    assert r.status_code == 202, r.json
    assert r.json["status"] == "queued" and r.json["text"] == "On its way!"
    with runtime.db.scope() as session:
        m = session.get(Message, r.json["id"])
        assert m.request["to"].startswith("+") and m.request["text"]["body"] == "On its way!"
        assert m.request["biz_opaque_callback_data"] == f"hub:{m.id}"


def test_free_form_after_the_window_is_refused_naming_templates(client, admin_headers, runtime, conversation):
    with runtime.db.scope() as session:
        session.get(Conversation, conversation).last_inbound_at = utcnow() - timedelta(hours=24, seconds=1)
    r = send(client, admin_headers, conversation_id=conversation, type="text", text={"body": "Hello?"})
    assert r.status_code == 409
    assert r.json["error"] == "window_closed" and "24-hour" in r.json["message"]
    names = {t["name"] for t in r.json["templates"]}
    assert names == {"order_update", "spring_sale"}, "only approved templates are offered"
    assert queued(runtime) == 0


def test_template_after_the_window_is_queued_with_rendered_text(client, admin_headers, runtime, conversation):
    with runtime.db.scope() as session:
        session.get(Conversation, conversation).last_inbound_at = utcnow() - timedelta(days=3)
    r = send(client, admin_headers, conversation_id=conversation, type="template", template={
        "name": "order_update", "language": "en", "body": ["Ana", "42"],
        "header": {"type": "image", "image": {"link": "https://files.example.com/a.png"}},
        "buttons": [{"index": 0, "sub_type": "url", "text": "42"}]})
    assert r.status_code == 202, r.json
    assert "Hi Ana, order 42 has shipped." in r.json["text"]
    assert r.json["template"] == {"name": "order_update", "language": "en", "category": "UTILITY"}
    with runtime.db.scope() as session:
        components = session.get(Message, r.json["id"]).request["template"]["components"]
    assert [c["type"] for c in components] == ["header", "body", "button"]


@pytest.mark.parametrize("template, problem", [
    ({"name": "order_update", "language": "en", "body": ["Ana"],
      "header": {"type": "image", "image": {"link": "https://x.io/a.png"}},
      "buttons": [{"index": 0, "sub_type": "url", "text": "1"}]}, "expects 2 body parameters"),
    ({"name": "order_update", "language": "en", "body": ["Ana", "42"],
      "buttons": [{"index": 0, "sub_type": "url", "text": "1"}]}, "needs a image header"),
    ({"name": "order_update", "language": "en", "body": ["Ana", "42"],
      "header": {"type": "image", "image": {"link": "https://x.io/a.png"}}}, "dynamic URL"),
    ({"name": "spring_sale", "language": "en", "body": ["Ana"]}, "named parameters"),
    ({"name": "spring_sale", "language": "en", "body": {"name": "Ana"}}, "missing: first_name"),
    ({"name": "paused_one", "language": "en"}, "is PAUSED"),
    ({"name": "no_such", "language": "en"}, "no template 'no_such'"),
])
def test_template_parameters_are_checked_before_sending(client, admin_headers, runtime, conversation,
                                                        template, problem):
    r = send(client, admin_headers, conversation_id=conversation, type="template", template=template)
    assert r.status_code == 422 and problem in r.json["message"], r.json
    assert queued(runtime) == 0


def test_marketing_to_an_opted_out_contact_is_refused(client, admin_headers, runtime, conversation):
    with runtime.db.scope() as session:
        session.scalars(select(Contact)).one().opted_out_at = utcnow()
    r = send(client, admin_headers, conversation_id=conversation, type="template",
             template={"name": "spring_sale", "language": "en", "body": {"first_name": "Ana"}})
    assert r.status_code == 409 and r.json["error"] == "opted_out"


@pytest.mark.parametrize("body, where", [
    ({"type": "text"}, "text"),
    ({"type": "text", "text": {"body": ""}}, "text"),
    ({"type": "image", "image": {"caption": "no source"}}, "image"),
    ({"type": "image", "image": {"link": "https://x.io/a.png", "id": "123456"}}, "image"),
    ({"type": "audio", "audio": {"id": "123456", "caption": "no"}}, "audio"),
    ({"type": "interactive", "interactive": {"type": "button", "body": "Pick",
                                             "buttons": [{"id": "a", "title": "Same"}, {"id": "b", "title": "Same"}]}},
     "interactive"),
    ({"type": "interactive", "interactive": {"type": "button", "body": "Pick", "buttons": [
        {"id": str(i), "title": f"B{i}"} for i in range(4)]}}, "interactive"),
    ({"type": "sms", "text": {"body": "x"}}, "type"),
])
def test_malformed_messages_get_422_naming_the_field(client, admin_headers, runtime, conversation, body, where):
    r = send(client, admin_headers, conversation_id=conversation, **body)
    assert r.status_code == 422
    assert where in r.json["errors"]["json"], r.json
    assert queued(runtime) == 0


def test_target_is_required_and_must_exist(client, admin_headers, runtime, conversation):
    r = send(client, admin_headers, type="text", text={"body": "x"})
    assert r.status_code == 422
    r = send(client, admin_headers, conversation_id=999, type="text", text={"body": "x"})
    assert r.status_code == 404 and r.json["error"] == "not_found"


def test_new_number_needs_a_template(client, admin_headers, runtime, conversation):
    with runtime.db.scope() as session:
        channel_id = session.get(Conversation, conversation).channel_id
    r = send(client, admin_headers, channel_id=channel_id, to="+4915112345678", type="text", text={"body": "hi"})
    assert r.status_code == 409 and "never opened" in r.json["message"]
    r = send(client, admin_headers, channel_id=channel_id, to="+4915112345678", type="template",
             template={"name": "spring_sale", "language": "en", "body": {"first_name": "Jo"}})
    assert r.status_code == 202
    with runtime.db.scope() as session:
        assert session.scalar(select(Contact).where(Contact.wa_id == "4915112345678")).phone == "+4915112345678"


def test_viewer_cannot_send(client, viewer_headers, conversation):
    r = send(client, viewer_headers, conversation_id=conversation, type="text", text={"body": "x"})
    assert r.status_code == 403


def test_interactive_list_and_reaction_and_read(client, admin_headers, runtime, conversation):
    r = send(client, admin_headers, conversation_id=conversation, type="interactive", interactive={
        "type": "list", "body": "Which shipping?", "button": "Options",
        "sections": [{"title": "Fast", "rows": [{"id": "express", "title": "Express", "description": "1-2 days"}]}]})
    assert r.status_code == 202, r.json
    assert "[Express]" in r.json["text"]
    r = send(client, admin_headers, conversation_id=conversation, type="reaction",
             reaction={"message_id": "wamid.X", "emoji": "👍"})
    assert r.status_code == 202
    r = send(client, admin_headers, conversation_id=conversation, type="read",
             read={"message_id": "wamid.X", "typing_indicator": True})
    assert r.status_code == 202
    with runtime.db.scope() as session:
        read = session.get(Message, r.json["id"])
        assert read.request == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X",
                                "typing_indicator": {"type": "text"}}
