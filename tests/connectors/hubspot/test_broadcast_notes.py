"""broadcast.recipient on HubSpot: each outcome a WhatsApp communication on the contact's
deal with the broadcast's hashtag and, for a failure, Meta's reason; a resend adds nothing."""
from __future__ import annotations

from dataclasses import replace

from connectors.base import HubEvent
from hub.platform.db import utcnow
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import contact, conversation
from tests.connectors.hubspot.test_connector import instance


def recipient_event(n: int, status: str, **error) -> HubEvent:
    data = {"broadcast": {"id": 7, "name": "December offer", "template": "promo", "language": "en",
                          "category": "marketing"},
            "recipient": {"id": 40 + n, "phone": contact(n).get("phone"), "status": status,
                          "reason": error.get("explanation"), "error": error or None, "message_id": 900 + n},
            "conversation": conversation(n), "contact": contact(n)}
    return HubEvent(f"b{n}-{status}", "broadcast.recipient", 1, utcnow(), data, f"conversation:{n}")


def test_outcomes_become_communications_on_the_deal(runtime, emu):
    connector = instance(runtime, make_connector(runtime, emu))
    started = HubEvent("s1", "conversation.started", 1, utcnow(),
                       {"conversation": conversation(1), "contact": contact(1)}, "conversation:1")
    assert connector.deliver([started])[0].status == "done"
    replied = recipient_event(1, "replied")
    failed = recipient_event(1, "failed", code=131047, title="x", explanation="more than 24 hours since they wrote")
    assert [o.status for o in connector.deliver([replied, failed])] == ["done", "done"]
    assert connector.deliver([replace(failed, attempt=2)])[0].status == "done"  # a resend
    bodies = [c["properties"]["hs_communication_body"] for c in emu.state.objects["communications"].values()]
    assert len(bodies) == 2, bodies
    assert any("#broadcast_7_replied" in b for b in bodies)
    assert any("131047" in b and "#broadcast_7_failed" in b for b in bodies)
