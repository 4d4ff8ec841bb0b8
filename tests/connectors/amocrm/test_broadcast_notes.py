"""broadcast.recipient on amoCRM: each outcome a note on the contact's deal with the
broadcast's hashtag and, for a failure, Meta's reason; a resend adds nothing."""
from __future__ import annotations

from connectors.broadcast_notes import note_id, note_text
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, dead_errors, drain, long_lived_settings


def recipient_event(n: int, status: str, **error) -> dict:
    return {"broadcast": {"id": 7, "name": "December offer", "template": "promo", "language": "en",
                          "category": "marketing"},
            "recipient": {"id": 40 + n, "phone": ev.contact(n)["phone"], "status": status,
                          "reason": error.get("explanation"), "error": error or None, "message_id": 900 + n},
            "conversation": ev.conversation(n), "contact": ev.contact(n)}


def test_outcomes_become_notes_on_the_deal(runtime, amo):
    add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 1, messages=0)
        ev.emit_event(session, "broadcast.recipient", recipient_event(1, "delivered"))
        failed = recipient_event(1, "failed", code=131049, title="x",
                                 explanation="Meta held the message back (per-user marketing limit)")
        ev.emit_event(session, "broadcast.recipient", failed)
        ev.emit_event(session, "broadcast.recipient", failed)  # the same outcome again
    result = drain(runtime)
    assert set(result) == {"done"}, dead_errors(runtime)
    texts = sorted(n["params"]["text"] for n in amo.store.notes.values())
    assert len(texts) == 2
    assert "delivered\n#broadcast_7_delivered" in texts[0]
    assert "131049" in texts[1] and "#broadcast_7_failed" in texts[1]
    assert {n["entity_id"] for n in amo.store.notes.values()} == set(amo.store.leads)


def test_note_ids_never_meet_hub_message_ids():
    assert note_id({"id": 1, "status": "sent"}) < 0
    assert len({note_id({"id": i, "status": s}) for i in range(1, 50)
                for s in ("sent", "delivered", "read", "replied", "failed")}) == 49 * 5
    assert note_text({"id": 1, "name": "n", "template": "t"}, {"status": "read"}).endswith("#broadcast_1_read")
