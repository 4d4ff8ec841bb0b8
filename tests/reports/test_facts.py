"""report_facts: the summary added up from one row of figures per conversation equals
the summary computed from the messages (every figure, on both databases), facts follow
the events, and what changes with time alone (a chat still waiting, an SLA running) is
decided when asked."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from hub.events.outbox import emit
from hub.models import (Contact, Conversation, Message, ReportBucket, ReportFact, ReportRollup, ReportRollupMoney,
                        ReportTime, Team)
from hub.reports import aggregate, facts
from hub.reports.rows import Filters, summary
from hub.models.users import create_user
from tests.support.whatsapp import make_channel
from tests.reports.test_deals_sla import T0, _report

OFFICE = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def normalized(figures):
    out = dict(figures)
    for key in ("by_operator", "by_team", "by_source", "by_campaign", "cost_by_category", "cost_by_channel"):
        out[key] = sorted(out[key], key=repr)
    for key in ("first_response_seconds", "response_seconds", "resolution_seconds"):
        out[key] = {k: (round(float(v), 6) if v is not None and k != "count" else v) for k, v in out[key].items()}
    out["cost"] = [{k: (str(Decimal(v).normalize()) if v is not None and k != "currency" else v)
                    for k, v in c.items()} for c in out["cost"]]
    return out


def seed_random(runtime, seed: int, n: int = 40):
    """n conversations over three days: bursts, bot replies, overnight waits in office
    hours, closes, transfers between teams and operators, costs and lead sources."""
    rnd = random.Random(seed)
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        people = [create_user(s, email=f"op{i}@example.com", password="correct horse battery", role="operator",
                              now=T0) for i in range(3)]
        teams = [Team(name=f"T{i}", strategy="round_robin", time_zone=zone, hours=hours, holidays=[], channel_ids=[],
                      sla=sla, created_at=T0, updated_at=T0)
                 for i, (zone, hours, sla) in enumerate([
                     ("UTC", {}, {}), ("Europe/Moscow", OFFICE, {"first_response_seconds": 600,
                                                                 "resolution_seconds": 7200}),
                     ("Asia/Yekaterinburg", OFFICE, {"next_response_seconds": 900})])]
        s.add_all(teams)
        s.flush()
        ids = []
        for k in range(n):
            opened = T0 + timedelta(minutes=rnd.randrange(0, 3 * 24 * 60))
            contact = Contact(wa_id=f"1777{k:06d}", phone=f"+1777{k:06d}", name=f"R{k}", created_at=opened,
                              updated_at=opened)
            s.add(contact)
            s.flush()
            source = rnd.choice([{}, {"utm_source": "google", "utm_campaign": "w"}, {"kind": "tracked_link"},
                                 {"referral": {"source_id": "1"}}, {"utm_source": "yandex"}])
            closed = opened + timedelta(minutes=rnd.randrange(5, 3000)) if rnd.random() < 0.4 else None
            c = Conversation(channel_id=channel_id, contact_id=contact.id,
                             team_id=rnd.choice([None] + [t.id for t in teams]),
                             assignee_id=rnd.choice([None] + [p.id for p in people]),
                             status="closed" if closed else "open", opened_at=opened, closed_at=closed,
                             lead_source=source, created_at=opened, updated_at=opened)
            s.add(c)
            s.flush()
            at = opened
            for _m in range(rnd.randrange(0, 7)):
                at += timedelta(seconds=rnd.choice([5, 40, 200, 700, 4000, 50000]))
                inbound = rnd.random() < 0.5
                human = not inbound and rnd.random() < 0.7
                cost = Decimal(rnd.choice(["0.0125", "0.05", "0.3"])) if not inbound and rnd.random() < 0.5 else None
                s.add(Message(conversation_id=c.id, direction="in" if inbound else "out", type="text", text="x",
                              status="sent", sent_at=at, author_id=rnd.choice(people).id if human else None,
                              cost=cost, currency="USD" if cost is not None else None,
                              pricing_category=rnd.choice(["service", "marketing", None]) if cost else None,
                              payload={}))
            ids.append(c.id)
    return ids


@pytest.mark.parametrize("seed", [1, 2])
def test_the_facts_add_up_to_the_same_figures_as_the_messages(runtime, seed):
    ids = seed_random(runtime, seed)
    for cid, outcome, amount in ((ids[0], "won", "100"), (ids[1], "open", "5"), (ids[2], "won", None)):
        _report(runtime, cid, f"D{cid}", outcome, amount)
    now = T0 + timedelta(days=4)
    with runtime.db.scope() as s:
        assert facts.rebuild(s, now=now) == len(ids)
        teams = list(s.scalars(select(Team.id)))
        for f in [Filters(start=T0, end=T0 + timedelta(days=3)), Filters(start=T0, end=T0 + timedelta(days=1)),
                  Filters(start=T0, end=T0 + timedelta(days=3), team_id=teams[1], missed_seconds=60),
                  Filters(start=T0, end=T0 + timedelta(days=3), source="google"),
                  # minutes at both ends (from the facts), whole hours, whole days; two filters (no buckets)
                  Filters(start=T0 + timedelta(minutes=17), end=T0 + timedelta(days=2, hours=5, minutes=3)),
                  Filters(start=T0 - timedelta(hours=9, minutes=1), end=T0 + timedelta(hours=20, minutes=59),
                          team_id=teams[1], missed_seconds=3600),
                  Filters(start=T0, end=T0 + timedelta(days=3), team_id=teams[1], source="google"),
                  Filters(start=T0 + timedelta(seconds=1), end=T0 + timedelta(minutes=50))]:
            expected = summary(s, f, now=now)
            assert expected["conversations"] > 0 or f.end - f.start < timedelta(days=2)
            assert normalized(aggregate.summary(s, f, now=now)) == normalized(expected), f


def test_a_waiting_chat_becomes_missed_with_time_alone(runtime):
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        contact = Contact(wa_id="15550001", phone="+15550001", name="W", created_at=T0, updated_at=T0)
        s.add(contact)
        s.flush()
        c = Conversation(channel_id=channel_id, contact_id=contact.id, status="open", opened_at=T0, lead_source={},
                         created_at=T0, updated_at=T0)
        s.add(c)
        s.flush()
        s.add(Message(conversation_id=c.id, direction="in", type="text", text="hi", status="received", sent_at=T0,
                      payload={}))
        facts.rebuild(s, now=T0 + timedelta(minutes=1))
    day = Filters(start=T0, end=T0 + timedelta(days=1))
    with runtime.db.scope() as s:
        assert aggregate.summary(s, day, now=T0 + timedelta(minutes=5))["missed"] == 0
        assert aggregate.summary(s, day, now=T0 + timedelta(minutes=16))["missed"] == 1


def test_facts_follow_the_events(runtime):
    ids = seed_random(runtime, 3, n=5)
    with runtime.db.scope() as s:
        facts.rebuild(s, now=T0)
        ana = create_user(s, email="late@example.com", password="correct horse battery", role="operator", now=T0)
        conv = s.get(Conversation, ids[0])
        at = T0 + timedelta(days=5)
        s.add(Message(conversation_id=conv.id, direction="out", type="text", text="late", status="sent", sent_at=at,
                      author_id=ana.id, payload={}))
        emit(s, "message.sent", {"conversation": {"id": conv.id}}, now=at, ordering_key=f"conversation:{conv.id}")
        before = s.get(ReportFact, conv.id).human_replies
    _report(runtime, ids[1], "D9", "won", "70", at=T0 + timedelta(days=5))
    with runtime.db.scope() as s:
        assert facts.lag(s, now=T0 + timedelta(days=5)) == timedelta(days=5)
        facts.follow(s, now=T0 + timedelta(days=5, minutes=1))
        assert s.get(ReportFact, ids[0]).human_replies == before + 1
        assert (s.get(ReportFact, ids[1]).won, s.get(ReportFact, ids[1]).revenue) == (1, {"RUB": "70.00"})
        assert facts.lag(s, now=T0 + timedelta(days=6)) == timedelta(0)


def test_hub_reports_rebuild(database_url, tmp_path, runtime):
    from click.testing import CliRunner

    from hub.cli import cli
    from tests.support.processes import hub_env

    ids = seed_random(runtime, 4, n=6)
    env = hub_env(database_url, tmp_path)
    r = CliRunner().invoke(cli, ["reports", "rebuild"], obj={}, env=env, catch_exceptions=False)
    assert r.exit_code == 0 and "computed the figures of 6 conversation(s)" in r.output
    with runtime.db.scope() as s:
        assert sorted(s.scalars(select(ReportFact.conversation_id))) == sorted(ids)


def _rollups(session):
    """What the rollups hold, without their row ids."""
    out = {}
    for model in (ReportRollup, ReportRollupMoney, ReportBucket, ReportTime):
        columns = [c for c in model.__table__.columns if c.name != "id"]
        out[model.__tablename__] = sorted(
            tuple(str(Decimal(v).normalize()) if isinstance(v, Decimal) else v for v in row)
            for row in session.execute(select(*columns)))
    return out


def test_rollups_kept_from_the_events_equal_a_rebuild(runtime):
    """Facts computed again change the rollups by their difference: after messages,
    closes, reassignments and a deal, what follow() kept is what a rebuild makes."""
    ids = seed_random(runtime, 5)
    with runtime.db.scope() as s:
        facts.rebuild(s, now=T0 + timedelta(days=5))
        ana = create_user(s, email="late@example.com", password="correct horse battery", role="operator", now=T0)
        at = T0 + timedelta(days=5)
        for k, cid in enumerate(ids[:12]):
            conv = s.get(Conversation, cid)
            s.add(Message(conversation_id=cid, direction="in" if k % 3 == 0 else "out", type="text", text="more",
                          status="sent", sent_at=at + timedelta(minutes=k), author_id=None if k % 3 == 0 else ana.id,
                          cost=Decimal("0.05") if k % 2 else None, currency="USD" if k % 2 else None,
                          pricing_category="utility" if k % 2 else None, payload={}))
            if k % 4 == 1:
                conv.status, conv.closed_at = "closed", at + timedelta(hours=1)
            if k % 5 == 2:
                conv.assignee_id = ana.id
            emit(s, "message.sent", {"conversation": {"id": cid}}, now=at, ordering_key=f"conversation:{cid}")
    _report(runtime, ids[3], "D3", "won", "40", at=T0 + timedelta(days=5))
    now = T0 + timedelta(days=5, hours=2)
    with runtime.db.scope() as s:
        facts.follow(s, now=now)
    with runtime.db.scope() as s:
        kept = _rollups(s)
        period = Filters(start=T0 - timedelta(minutes=7), end=T0 + timedelta(days=3, minutes=30))
        assert normalized(aggregate.summary(s, period, now=now)) == normalized(summary(s, period, now=now))
    with runtime.db.scope() as s:
        facts.rebuild(s, now=now)
    with runtime.db.scope() as s:
        assert _rollups(s) == kept
        assert kept["report_rollups"] and kept["report_buckets"] and kept["report_times"]


def test_a_deleted_channel_leaves_the_rollups_with_the_next_pass(runtime):
    """A channel removed with its conversations leaves no event; the next pass (the one
    a summary request takes first) finds the facts whose conversation is gone and takes
    them out of every rollup: the figures are those of the channel left, and the rollups
    what a rebuild makes."""
    from sqlalchemy import delete

    from hub.models import Channel

    ids = seed_random(runtime, 6)
    other, _key = make_channel(runtime, name="Support", phone_number_id="200000000000002", waba_id="300000000000003")
    now = T0 + timedelta(days=5)
    with runtime.db.scope() as s:
        for cid in ids[::2]:
            s.get(Conversation, cid).channel_id = other
        facts.rebuild(s, now=now)
    period = Filters(start=T0 - timedelta(hours=1), end=T0 + timedelta(days=4))
    with runtime.db.scope() as s:
        assert aggregate.summary(s, period, now=now)["conversations"] == len(ids)
        s.execute(delete(Channel).where(Channel.id == other))
    facts.catch_up(runtime.db, now=now + timedelta(minutes=1))
    with runtime.db.scope() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == len(ids[1::2]), "gone with the channel"
        figures = aggregate.summary(s, period, now=now)
        assert figures["conversations"] == len(ids[1::2])
        assert normalized(figures) == normalized(summary(s, period, now=now))
        kept = _rollups(s)
        assert all(row[2] != other for row in kept["report_rollups"]), "no rollup of the deleted channel"
    with runtime.db.scope() as s:
        facts.rebuild(s, now=now + timedelta(minutes=1))
    with runtime.db.scope() as s:
        assert _rollups(s) == kept


def test_percentiles_are_exact_in_a_crowded_bucket(runtime):
    """The summary's median and p90 from the rollups are the very values, not a bucket's
    bound: 61 resolutions all in the one bucket [3600, 3866) s, 30 of them exactly one
    hour, the rest spread through the bucket, over whole days (report_buckets) and
    edges (report_times), with one filter (its dim's buckets) and with two (no buckets)."""
    from hub.reports import metrics
    from hub.reports.rollups import BOUNDS, bucket_of

    assert bucket_of(3600) == bucket_of(3865) == BOUNDS.index(3600) and BOUNDS[bucket_of(3600) + 1] == 3866
    channel_id, _key = make_channel(runtime)
    seconds = [3600] * 30 + [3601 + 8 * k for k in range(31)]  # 3601 .. 3841
    random.Random(7).shuffle(seconds)
    with runtime.db.scope() as s:
        team = Team(name="Crowd", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                    sla={}, created_at=T0, updated_at=T0)
        s.add(team)
        s.flush()
        for k, resolution in enumerate(seconds):
            opened = T0 + timedelta(hours=2 * k, minutes=k % 7)  # five days, from 09:00 on the first
            contact = Contact(wa_id=f"1888{k:06d}", phone=f"+1888{k:06d}", name=f"C{k}", created_at=opened,
                              updated_at=opened)
            s.add(contact)
            s.flush()
            c = Conversation(channel_id=channel_id, contact_id=contact.id, team_id=team.id if k % 2 else None,
                             status="closed", opened_at=opened, closed_at=opened + timedelta(seconds=resolution),
                             lead_source={"utm_source": "google"} if k % 3 else {}, created_at=opened,
                             updated_at=opened)
            s.add(c)
            s.flush()
            s.add(Message(conversation_id=c.id, direction="in", type="text", text="?", status="received",
                          sent_at=opened, payload={}))
        now = T0 + timedelta(days=7)
        facts.rebuild(s, now=now)
    periods = [Filters(start=T0 - timedelta(hours=9), end=T0 + timedelta(days=5)),  # whole days and an edge
               Filters(start=T0 + timedelta(minutes=30), end=T0 + timedelta(days=4, hours=15, minutes=10)),
               Filters(start=T0 - timedelta(hours=9), end=T0 + timedelta(days=5), team_id=team.id),
               Filters(start=T0 - timedelta(hours=9), end=T0 + timedelta(days=5), team_id=team.id, source="google")]
    with runtime.db.scope() as s:
        for f in periods:
            chosen = [r for k, r in enumerate(seconds)
                      if f.start <= T0 + timedelta(hours=2 * k, minutes=k % 7) < f.end
                      and (f.team_id is None or k % 2) and (f.source is None or k % 3)]
            got = aggregate.summary(s, f, now=now)["resolution_seconds"]
            assert len(chosen) > 10 and len(set(chosen)) > 5, f
            assert got == {"count": len(chosen), "median": metrics.median(chosen),
                           "p90": metrics.percentile(chosen, 0.9)}, f
            assert got == summary(s, f, now=now)["resolution_seconds"], f
