"""Two webhooks at once: about the same new user they make one contact and one
conversation; carrying the same message, the second one's transaction fails (Meta
retries it) and its retry changes nothing. On SQLite writers take turns, so the second
one simply finds what the first one stored."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from hub.app import create_app
from hub.conversations.store import ensure_contact, open_conversation_row
from hub.platform.db import utcnow
from hub.events.raw_webhooks import receive
from hub.models import Contact, Conversation, Event, Message, RawWebhook
from tests.conftest import BACKEND
from tests.support.locks import wait_for_lock_waiter
from tests.support.whatsapp import fixture, make_channel, post_signed


@pytest.fixture
def channel(runtime):
    return make_channel(runtime)


def run_while_held(runtime, first_session, second) -> dict:
    """Run `second` in a thread while `first_session` holds its uncommitted work, then
    commit that work and let `second` finish."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = second()
        except Exception as exc:  # pragma: no cover - reported by the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    if BACKEND == "postgres":
        wait_for_lock_waiter(runtime)
    first_session.commit()
    thread.join(60)
    assert not thread.is_alive()
    return outcome


def counts(runtime) -> dict:
    with runtime.db.scope() as session:
        return {m.__name__: session.scalar(select(func.count()).select_from(m))
                for m in (Contact, Conversation, Message, Event, RawWebhook)}


@pytest.mark.parametrize("known_contact", [False, True], ids=["new contact", "known contact"])
def test_two_webhooks_of_a_new_user_make_one_contact_and_one_conversation(runtime, channel, known_contact):
    channel_id, _ = channel
    now = utcnow()
    if known_contact:  # as it will be seen (same name, nothing to update): the two race on the conversation only
        with runtime.db.scope() as session:
            ensure_contact(session, wa_id="15557654321", user_id=None, name="Ana", now=now)

    def new_user(session):
        contact = ensure_contact(session, wa_id="15557654321", user_id=None, name="Ana", now=now)
        return contact, *open_conversation_row(session, channel_id=channel_id, contact_id=contact.id, now=now)

    first, second = runtime.db.sessionmaker(), runtime.db.sessionmaker()
    try:
        contact, conversation, started = new_user(first)

        def in_second():
            found = new_user(second)
            second.commit()
            return found

        outcome = run_while_held(runtime, first, in_second)
    finally:
        first.close()
        second.close()
    assert "error" not in outcome, outcome.get("error")
    other_contact, other_conversation, other_started = outcome["result"]
    assert (other_contact.id, other_conversation.id) == (contact.id, conversation.id)
    assert started and not other_started
    assert counts(runtime)["Contact"] == 1 and counts(runtime)["Conversation"] == 1


def test_a_concurrent_duplicate_fails_its_transaction_and_its_retry_changes_nothing(runtime, channel):
    channel_id, key = channel
    app = create_app(runtime=runtime)  # not TESTING: a failure answers 500 as it would to Meta
    assert post_signed(app.test_client(), key, fixture("image__caption")).status_code == 200  # a known user
    body = fixture("text__plain")
    first = runtime.db.sessionmaker()
    try:
        receive(first, source="whatsapp", channel_id=channel_id, headers={}, body=body, now=utcnow(),
                runtime=runtime)
        outcome = run_while_held(runtime, first, lambda: post_signed(app.test_client(), key, body).status_code)
    finally:
        first.close()
    assert "error" not in outcome, outcome.get("error")
    stored = counts(runtime)
    assert stored["Message"] == 2
    if BACKEND == "postgres":
        assert outcome["result"] == 500, "the second INSERT of the wamid fails: Meta retries"
    else:
        assert outcome["result"] == 200, "SQLite: the second webhook ran after the first and found the message"
    raw_before = stored.pop("RawWebhook")
    assert post_signed(app.test_client(), key, body).status_code == 200
    after = counts(runtime)
    assert after.pop("RawWebhook") == raw_before + 1, "the retry's body is kept"
    assert after == stored, "the retry changes nothing else"
