"""Template and broadcast funnels (docs/metrics.md) on constructed messages with known
answers: stages reached from the statuses WhatsApp reported, replies within the window
(in a later conversation too), failures, costs; through the API summary (both databases)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from hub.models import Broadcast, BroadcastRecipient, Contact, Conversation, Message, Team
from hub.reports.facts import follow
from hub.reports.funnels import funnels
from hub.reports.rows import Filters
from tests.support.whatsapp import make_channel

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)  # a Monday, in the past
WEEK = Filters(start=datetime(2026, 11, 30, tzinfo=timezone.utc), end=datetime(2026, 12, 7, tzinfo=timezone.utc))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def sent(runtime):
    """A broadcast of `autumn_sale` (ru, MARKETING) to five people and one `order_ready`
    (en_US, UTILITY) sent by hand, as the webhooks left them:

    1 read, then replied 10 minutes later             -> replied
    2 delivered, replied 30 hours later (out of window) -> delivered
    3 read, conversation closed, reply in a new one 2 h later -> replied
    4 failed (131026, undeliverable)                  -> failed
    5 accepted by WhatsApp, nothing since              -> sent
    6 order_ready delivered and read; a reply before it was sent does not count
    A seventh template message, a week earlier, is out of the period. The reports' pass
    has run over them."""
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        team = Team(name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                    sla={}, created_at=T0, updated_at=T0)
        s.add(team)
        s.flush()
        b = Broadcast(name="Autumn sale", channel_id=channel_id, template_name="autumn_sale", template_language="ru",
                      subscription="marketing", status="completed", created_at=T0, updated_at=T0)
        s.add(b)
        s.flush()

        def person(n: int) -> tuple[Contact, Conversation]:
            contact = Contact(wa_id=f"7916000{n:04d}", phone=f"+7916000{n:04d}", name=f"Клиент {n}",
                              created_at=at(-60), updated_at=at(-60))
            s.add(contact)
            s.flush()
            c = Conversation(channel_id=channel_id, contact_id=contact.id, team_id=team.id, status="open",
                             opened_at=at(-60), created_at=at(-60), updated_at=at(-60))
            s.add(c)
            s.flush()
            return contact, c

        def template(c: Conversation, name: str, language: str, category: str, minutes: float, *,
                     delivered: float | None = None, read: float | None = None, failed: bool = False,
                     cost: str | None = None) -> Message:
            m = Message(conversation_id=c.id, direction="out", type="template", status="sent", payload={},
                        sent_at=at(minutes), accepted_at=at(minutes + 0.05), template_name=name,
                        template_language=language, template_category=category,
                        delivered_at=at(delivered) if delivered is not None else None,
                        read_at=at(read) if read is not None else None,
                        cost=Decimal(cost) if cost else None, currency="USD" if cost else None)
            if delivered is not None:
                m.status = "delivered"
            if read is not None:
                m.status = "read"
            if failed:
                m.status, m.accepted_at, m.error_code, m.failed_at = "failed", None, 131026, at(minutes + 1)
            s.add(m)
            s.flush()
            return m

        def inbound(c: Conversation, minutes: float) -> None:
            s.add(Message(conversation_id=c.id, direction="in", type="text", text="Да, интересно", status="received",
                          sent_at=at(minutes), payload={}))

        people = [person(n) for n in range(1, 7)]
        outcomes = [dict(delivered=1, read=2, cost="0.0850"), dict(delivered=1, cost="0.0850"),
                    dict(delivered=1, read=3, cost="0.0850"), dict(failed=True), dict()]
        for n, ((contact, c), kw) in enumerate(zip(people, outcomes), 1):
            m = template(c, "autumn_sale", "ru", "MARKETING", 0, **kw)
            s.add(BroadcastRecipient(broadcast_id=b.id, phone=contact.phone, contact_id=contact.id,
                                     status="sent", message_id=m.id, created_at=T0, updated_at=T0))
        inbound(people[0][1], 10)
        inbound(people[1][1], 30 * 60)
        people[2][1].status, people[2][1].closed_at = "closed", at(30)
        s.flush()
        later = Conversation(channel_id=channel_id, contact_id=people[2][0].id, status="open", opened_at=at(120),
                             created_at=at(120), updated_at=at(120))
        s.add(later)
        s.flush()
        inbound(later, 120)
        _contact, own = people[5]
        inbound(own, 4)
        template(own, "order_ready", "en_US", "UTILITY", 5, delivered=6, read=7, cost="0.0200")
        template(own, "order_ready", "en_US", "UTILITY", -7 * 24 * 60, delivered=1, cost="0.0200")
        made = {"broadcast": b.id, "channel": channel_id, "team": team.id}
    with runtime.db.scope() as s:
        follow(s, now=WEEK.end)  # the reports' pass, which marks the replies
    return made


def test_template_funnel_counts_each_stage_reached(runtime, sent):
    with runtime.db.scope() as s:
        found = funnels(s, WEEK)
    autumn, order = found["templates"]
    assert (autumn["template"], autumn["language"], autumn["category"]) == ("autumn_sale", "ru", "MARKETING")
    assert {k: autumn[k] for k in ("messages", "sent", "delivered", "read", "replied", "failed")} == {
        "messages": 5, "sent": 4, "delivered": 3, "read": 2, "replied": 2, "failed": 1}
    assert autumn["replied_percent"] == 50.0 and autumn["failed_percent"] == 20.0
    assert autumn["cost"] == [{"currency": "USD", "amount": "0.255000"}]
    assert autumn["cost_per_reply"] == [{"currency": "USD", "amount": "0.127500"}]
    assert {k: order[k] for k in ("template", "messages", "sent", "delivered", "read", "replied")} == {
        "template": "order_ready", "messages": 1, "sent": 1, "delivered": 1, "read": 1, "replied": 0}, \
        "the customer's message before the template is no reply, the week before is out of the period"
    assert order["cost_per_reply"] == []


def test_broadcast_funnel_and_filters(runtime, sent):
    with runtime.db.scope() as s:
        found = funnels(s, WEEK)
        assert [(b["broadcast_id"], b["name"], b["template"], b["messages"], b["replied"])
                for b in found["broadcasts"]] == [(sent["broadcast"], "Autumn sale", "autumn_sale", 5, 2)]
        other_team = Filters(start=WEEK.start, end=WEEK.end, team_id=sent["team"] + 1)
        assert funnels(s, other_team) == {"templates": [], "broadcasts": []}
        same_channel = Filters(start=WEEK.start, end=WEEK.end, channel_id=sent["channel"])
        assert [t["messages"] for t in funnels(s, same_channel)["templates"]] == [5, 1]


def test_a_reply_counts_within_the_window_only(runtime, sent):
    with runtime.db.scope() as s:
        wide = funnels(s, WEEK, window=timedelta(hours=31))
        narrow = funnels(s, WEEK, window=timedelta(minutes=9))
    assert wide["templates"][0]["replied"] == 3, "the reply 30 hours later counts in a 31-hour window"
    assert narrow["templates"][0]["replied"] == 0, "10 minutes is past a 9-minute window"


def test_the_api_summary_carries_the_funnels(client, admin_headers, sent):
    r = client.get("/api/v1/reports/summary", query_string={"from": "2026-11-30T00:00:00Z",
                                                             "to": "2026-12-07T00:00:00Z"}, headers=admin_headers)
    assert r.status_code == 200, r.json
    assert [t["template"] for t in r.json["figures"]["templates"]] == ["autumn_sale", "order_ready"]
    assert r.json["figures"]["broadcasts"][0]["replied"] == 2
    assert [t["template"] for t in r.json["previous"]["templates"]] == ["order_ready"]


def test_a_schedule_that_chose_the_funnels_sends_them(runtime, sent):
    from hub.models import Event, ReportSchedule
    from hub.reports.runs import produce
    from sqlalchemy import select

    with runtime.db.scope() as s:
        chosen = ReportSchedule(name="Weekly templates", frequency="weekly", at_time="09:00", weekday=0,
                                time_zone="UTC", filters={}, recipients=["head@example.com"], webhook=True,
                                sections=["templates", "broadcasts"], created_at=T0)
        plain = ReportSchedule(name="Weekly plain", frequency="weekly", at_time="09:00", weekday=0, time_zone="UTC",
                               filters={}, recipients=["head@example.com"], webhook=False, created_at=T0)
        s.add_all([chosen, plain])
        s.flush()
        ids = chosen.id, plain.id
    mails = []
    for schedule_id in ids:
        produce(runtime, schedule_id, WEEK.start, WEEK.end, now=WEEK.end, send_mail=lambda m, _s: mails.append(m))
    text = mails[0].get_body(("plain",)).get_content()
    assert "Template funnels (messages, sent, delivered, read, replied, failed, cost):" in text
    assert "  autumn_sale (ru, MARKETING): 5, 4, 3, 2, 2, 1, 0.255000 USD" in text
    assert "  Autumn sale: 5, 4, 3, 2, 2, 1, 0.255000 USD" in text
    html = mails[0].get_body(("html",)).get_content()
    assert "<h3>Template funnels</h3>" in html and "<h3>Broadcasts</h3>" in html
    assert "Template funnels" not in mails[1].get_body(("plain",)).get_content(), "not chosen, not sent"
    with runtime.db.scope() as s:
        ready = s.scalars(select(Event).where(Event.type == "report.ready")).one().data["report"]
    assert [t["template"] for t in ready["figures"]["templates"]] == ["autumn_sale", "order_ready"]
    assert ready["figures"]["broadcasts"][0]["replied"] == 2


def test_schedule_sections_through_the_api(client, admin_headers):
    body = {"name": "Daily", "frequency": "daily", "at_time": "08:00", "webhook": True, "sections": ["broadcasts"]}
    r = client.post("/api/v1/report-schedules", json=body, headers=admin_headers)
    assert r.status_code == 201 and r.json["sections"] == ["broadcasts"], r.json
    r = client.patch(f"/api/v1/report-schedules/{r.json['id']}", json={"at_time": "07:30"}, headers=admin_headers)
    assert r.json["sections"] == ["broadcasts"], "a patch without sections keeps them"
    r = client.post("/api/v1/report-schedules", json={**body, "name": "Bad", "sections": ["costs"]},
                    headers=admin_headers)
    assert r.status_code == 422 and "sections" in r.json["errors"]["json"], r.json


def _customer_writes(runtime, person: int, minutes: float, *, pass_at: datetime) -> None:
    """Person n writes `minutes` after T0, with the event ingest emits, after the
    fixture's pass; then the reports' pass runs at `pass_at`."""
    from sqlalchemy import select

    from hub.events.outbox import emit

    with runtime.db.scope() as s:
        cid = s.scalar(select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id)
                       .where(Contact.wa_id == f"7916000{person:04d}"))
        s.add(Message(conversation_id=cid, direction="in", type="text", text="А можно подробнее?", status="received",
                      sent_at=at(minutes), payload={}))
        s.flush()
        emit(s, "message.received", {"conversation": {"id": cid}}, now=pass_at - timedelta(seconds=30),
             ordering_key=f"conversation:{cid}")
    with runtime.db.scope() as s:
        follow(s, now=pass_at)


def test_a_reply_after_the_pass_ran_is_marked_by_the_next_one(runtime, sent):
    _customer_writes(runtime, 5, 23 * 60, pass_at=WEEK.end + timedelta(minutes=5))
    with runtime.db.scope() as s:
        marked, live = funnels(s, WEEK), funnels(s, WEEK, live=True)
    autumn = marked["templates"][0]
    assert (autumn["replied"], autumn["read"], autumn["delivered"]) == (3, 3, 4), \
        "person 5 wrote 23 h after the template: replied, so read and delivered too"
    assert marked == live, "the marks and the message-by-message check agree"


def test_a_reply_after_the_window_is_no_reply_on_the_incremental_path(runtime, sent):
    _customer_writes(runtime, 5, 24 * 60 + 1, pass_at=WEEK.end + timedelta(minutes=5))
    with runtime.db.scope() as s:
        marked, live = funnels(s, WEEK), funnels(s, WEEK, live=True)
    assert marked["templates"][0]["replied"] == 2, "24 h and 1 minute after the template is past the window"
    assert marked == live


def test_a_failed_template_answered_still_counts_no_reply(runtime, sent):
    _customer_writes(runtime, 4, 30, pass_at=WEEK.end + timedelta(minutes=5))
    with runtime.db.scope() as s:
        autumn = funnels(s, WEEK)["templates"][0]
    assert (autumn["replied"], autumn["failed"]) == (2, 1), "a message after a failed template answers nothing"


def test_the_rebuild_keeps_the_same_rows_as_the_passes(runtime, sent):
    from sqlalchemy import select

    from hub.models import ReportTemplateMessage
    from hub.reports.facts import rebuild

    _customer_writes(runtime, 5, 60, pass_at=WEEK.end + timedelta(minutes=5))
    table = ReportTemplateMessage.__table__
    with runtime.db.scope() as s:
        kept = sorted(s.execute(select(table)).all())
        rebuild(s, now=WEEK.end + timedelta(minutes=5))
        assert sorted(s.execute(select(table)).all()) == kept
    assert len(kept) == 7 and sum(row.replied for row in kept) == 3
