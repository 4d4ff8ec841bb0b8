"""broadcast.recipient on Bitrix24: each outcome a timeline comment on the contact's deal
with the broadcast's hashtag and, for a failure, Meta's reason; a resend adds nothing."""
from __future__ import annotations

from dataclasses import replace

from connectors.base import HubEvent
from tests.connectors.bitrix24.factory import T0, contact, conversation, hub_event
from tests.connectors.bitrix24.test_connector import make
from tests.connectors.bitrix24.conftest import webhook_settings


def recipient_event(i: int, status: str, **error) -> HubEvent:
    data = {"broadcast": {"id": 7, "name": "December offer", "template": "promo", "language": "en",
                          "category": "marketing"},
            "recipient": {"id": 40 + i, "phone": contact(i)["phone"], "status": status,
                          "reason": error.get("explanation"), "error": error or None, "message_id": 900 + i},
            "conversation": conversation(i), "contact": contact(i)}
    return HubEvent(id=f"evt-b-{i}-{status}", type="broadcast.recipient", version=1, occurred_at=T0, data=data,
                    ordering_key=f"conversation:{5000 + i}")


def test_outcomes_become_timeline_comments_on_the_deal(runtime, portal):
    b24 = make(runtime, webhook_settings(portal))
    assert b24.deliver([hub_event("conversation.started", 1)])[0].status == "done"
    read = recipient_event(1, "read")
    failed = recipient_event(1, "failed", code=131026, title="x", explanation="the number may not be on WhatsApp")
    assert [o.status for o in b24.deliver([read])] == ["done"]
    assert [o.status for o in b24.deliver([failed])] == ["done"]
    assert [o.status for o in b24.deliver([replace(failed, attempt=2)])] == ["done"]  # a resend
    comments = [c["COMMENT"] for c in portal.portal.comments.values()]
    assert len(comments) == 2, comments
    assert any("#broadcast_7_read" in c for c in comments)
    assert any("131026" in c and "#broadcast_7_failed" in c for c in comments)
