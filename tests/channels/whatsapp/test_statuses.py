"""Status webhooks in any order, any number of times, end in the same stored state."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from hub.channels.whatsapp.inbound.statuses import record_status
from hub.channels.whatsapp.inbound.status_order import StatusRow, resolve
from hub.channels.whatsapp.inbound.types import Pricing, Route, StatusUpdate, WaError
from hub.conversations.store import open_conversation, upsert_contact
from hub.platform.db import utcnow
from hub.models import Message
from tests.support.whatsapp import make_channel

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
ROUTE = Route("1100000000000001", "2200000000000002")
PMP = Pricing(True, "PMP", "regular", "marketing")


def updates(wamid: str) -> list[StatusUpdate]:
    return [
        StatusUpdate(ROUTE, wamid, "sent", T0 + timedelta(seconds=1), "15557654321", pricing=PMP),
        StatusUpdate(ROUTE, wamid, "delivered", T0 + timedelta(seconds=2), "15557654321", pricing=PMP),
        StatusUpdate(ROUTE, wamid, "read", T0 + timedelta(seconds=3), "15557654321"),
        StatusUpdate(ROUTE, wamid, "failed", T0 + timedelta(seconds=4), "15557654321",
                     errors=(WaError(131026, "Message undeliverable"),)),
    ]


def test_resolve_rules():
    rows = lambda *names: [StatusRow(n, T0 + timedelta(seconds=i), {}) for i, n in enumerate(names)]  # noqa: E731
    assert resolve(rows("sent", "read")).status == "read"
    assert resolve(rows("read", "delivered")).status == "read", "a late delivered never overwrites read"
    assert resolve(rows("sent", "failed")).status == "failed"
    assert resolve(rows("delivered", "failed")).status == "delivered", "one device got it"
    assert resolve([]).status is None
    failed = resolve([StatusRow("failed", T0, {"errors": [{"code": 131047, "title": "Re-engagement message"}]})])
    assert (failed.error_code, failed.error_title) == (131047, "Re-engagement message")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_duplication_gives_the_same_state(runtime, data):
    from hub.models import Channel

    with runtime.db.scope() as session:
        has_channel = session.scalar(select(Channel.id)) is not None
    if not has_channel:
        make_channel(runtime)
    subset = data.draw(st.lists(st.sampled_from(range(4)), min_size=1, max_size=4, unique=True), label="statuses")
    order = data.draw(st.permutations(subset + data.draw(st.lists(st.sampled_from(subset), max_size=4),
                                                             label="duplicates")), label="order")
    results = []
    for sequence in (sorted(subset), order):
        wamid = f"wamid.{id(sequence)}.{len(results)}.{utcnow().timestamp()}"
        with runtime.db.scope() as session:
            channel = session.scalars(select(Channel)).first()
            contact = upsert_contact(session, wa_id="15557654321", user_id=None, now=T0)
            conv, _ = open_conversation(session, channel_id=channel.id, contact_id=contact.id, now=T0)
            session.add(Message(conversation_id=conv.id, direction="out", type="template", text="hi",
                                payload={}, status="accepted", sent_at=T0, wa_message_id=wamid,
                                template_name="promo", template_language="en", template_category="MARKETING",
                                recipient="+15557654321", created_at=T0, updated_at=T0))
        all_updates = updates(wamid)
        for index in sequence:
            with runtime.db.scope() as session:
                record_status(session, all_updates[index], now=T0, runtime=runtime)
        with runtime.db.scope() as session:
            m = session.scalar(select(Message).where(Message.wa_message_id == wamid))
            results.append((m.status, m.accepted_at, m.delivered_at, m.read_at, m.failed_at, m.error_code,
                            m.billable, m.pricing_category, m.pricing_type, m.cost))
    assert results[0] == results[1]


def test_every_permutation_of_all_four(runtime):
    make_channel(runtime)
    states = set()
    for n, order in enumerate(itertools.permutations(range(4))):
        wamid = f"wamid.perm.{n}"
        with runtime.db.scope() as session:
            contact = upsert_contact(session, wa_id="15557654321", user_id=None, now=T0)
            from hub.models import Channel
            channel = session.scalars(select(Channel)).first()
            conv, _ = open_conversation(session, channel_id=channel.id, contact_id=contact.id, now=T0)
            session.add(Message(conversation_id=conv.id, direction="out", type="text", text="hi", payload={},
                                status="accepted", sent_at=T0, wa_message_id=wamid, recipient="+15557654321",
                                created_at=T0, updated_at=T0))
        for index in order:
            with runtime.db.scope() as session:
                record_status(session, updates(wamid)[index], now=T0, runtime=runtime)
        with runtime.db.scope() as session:
            m = session.scalar(select(Message).where(Message.wa_message_id == wamid))
            states.add((m.status, m.read_at, m.error_code))
    assert states == {("read", T0 + timedelta(seconds=3), 131026)}
