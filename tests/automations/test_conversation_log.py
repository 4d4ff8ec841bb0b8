"""The conversation view in the admin shows the conversation's automation runs: which
scenario, which step, when, and what each step did (the question sent, the answer, the
invalid answer and why, what was stored where), in English and Russian."""
from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from hub.models import Conversation, Team
from tests.automations.support import Hub
from tests.automations.test_runtime import LEAD
from tests.support.admin import signed_in


@pytest.fixture
def hub(runtime, client):
    with runtime.db.scope() as session:
        session.add(Team(id=1, name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[],
                         channel_ids=[], sla={}))
    return Hub(runtime, client)


def test_the_step_log_in_the_conversation_view(app, runtime, hub):
    hub.publish(LEAD)
    for text in ("What is the price?", "Anna", "a lot", "50 000"):
        hub.say("491510000001", text)
        hub.work()
    with runtime.db.scope() as session:
        conversation_id = session.scalar(select(Conversation.id))
    viewer = signed_in(app, runtime, "viewer")
    page = html.unescape(viewer.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True))
    card = page[page.index('id="automation-runs"'):]
    assert "Lead" in card and "handed_off" in card
    assert "<code>name</code>" in card and "<code>budget</code>" in card
    assert "«Your name?»" in card and "answered</strong> «Anna»" in card
    assert "invalid answer</strong> «a lot»" in card
    assert "stored</strong>" in card and "target: deal.budget" in card and "trigger: keyword" in card

    viewer.get("/admin/language/ru?next=/admin/")
    page = html.unescape(viewer.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True))
    card = page[page.index('id="automation-runs"'):]
    assert "Автоматизации" in card and "ответ</strong> «Anna»" in card and "Что произошло" in card


def test_a_conversation_without_runs_says_so(app, runtime, hub):
    hub.say("491510000002", "hello")
    with runtime.db.scope() as session:
        conversation_id = session.scalar(select(Conversation.id))
    page = signed_in(app, runtime, "viewer").get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert "No scenario has run in this conversation." in page
