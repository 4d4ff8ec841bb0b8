"""Customers' names from Instagram's User Profile API: queued by the ingest once per
contact, fetched by a worker (never in the webhook), kept off names someone gave,
Meta's temporary errors retried with backoff, consent refusals ended by name."""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

from hub.channels.instagram.profiles import MAX_ATTEMPTS, ProfileFetcher
from hub.platform.db import utcnow
from hub.models import Contact, Event, ProfileFetch
from tests.support.clock import FakeClock
from tests.support.instagram import wired

ANA = "1234567890123456"


def fetcher(runtime, clock):
    clock.now = max(clock.now, utcnow() + timedelta(seconds=30))  # past what the webhooks queued
    return ProfileFetcher(runtime, clock=clock, rng=random.Random(1))


def contact(runtime, igsid: str = ANA) -> Contact:
    with runtime.db.scope() as session:
        row = session.scalar(select(Contact).where(Contact.user_id == f"ig:{igsid}"))
        session.expunge(row)
        return row


def fetch_row(runtime, contact_id: int) -> ProfileFetch:
    with runtime.db.scope() as session:
        row = session.get(ProfileFetch, contact_id)
        session.expunge(row)
        return row


def updates(runtime) -> list[dict]:
    with runtime.db.scope() as session:
        return [e.data["changes"] for e in session.scalars(select(Event).where(Event.type == "contact.updated"))]


def profile_calls(w) -> int:
    return sum(1 for _, what, _ in w["emu"].world.requests if what == "profile")


def test_the_name_arrives_from_a_worker_not_the_webhook_and_is_asked_once(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        ana = w["emu"].customer(w["account"], ANA)
        ana.set_profile("Ana Lima", "ana.lima", "https://cdn.example/ana.jpg")
        ana.send_text("Hi!")
        ana.send_text("Is the blue one in stock?")
        assert w["emu"].flush() == 2
        assert contact(runtime).name == "" and profile_calls(w) == 0  # the webhook asked nothing
        assert fetcher(runtime, clock).run_once() == 1
        row = contact(runtime)
        assert (row.name, row.username) == ("Ana Lima", "ana.lima")
        assert updates(runtime) == [{"name": {"old": "", "new": "Ana Lima"},
                                     "username": {"old": None, "new": "ana.lima"}}]  # for the CRMs
        assert fetcher(runtime, clock).run_once() == 0
        ana.send_text("Hello again")
        assert w["emu"].flush() == 1
        clock.now += timedelta(days=1)
        assert fetcher(runtime, clock).run_once() == 0 and profile_calls(w) == 1
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(ProfileFetch)) == 1


def test_a_name_someone_gave_is_kept(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        ana = w["emu"].customer(w["account"], ANA)
        ana.set_profile("Ana Lima", "ana.lima")
        ana.send_text("Hi!")
        w["emu"].flush()
        with runtime.db.scope() as session:
            session.scalar(select(Contact).where(Contact.user_id == f"ig:{ANA}")).name = "Ana (VIP)"
        fetcher(runtime, clock).run_once()
        assert (contact(runtime).name, contact(runtime).username) == ("Ana (VIP)", "ana.lima")


def test_temporary_errors_retry_with_backoff_and_consent_refusals_end(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        ana = w["emu"].customer(w["account"], ANA)
        ana.set_profile("Ana Lima", None)
        ana.send_text("Hi!")
        w["emu"].flush()
        ana_id = contact(runtime).id
        w["emu"].fail_next(2, "An unexpected error has occurred. Please retry your request later.", status=500)
        assert fetcher(runtime, clock).run_once() == 1
        row = fetch_row(runtime, ana_id)
        assert row.attempts == 1 and row.fetched_at is None and row.due_at > clock.now
        assert "unexpected error" in row.error
        assert fetcher(runtime, clock).run_once() == 0  # not due yet
        clock.now = row.due_at
        assert fetcher(runtime, clock).run_once() == 1
        assert contact(runtime).name == "Ana Lima" and fetch_row(runtime, ana_id).due_at is None

        # A customer the account has no consent from (they never wrote): ended, by name.
        w["emu"].world.last_message.clear()
        with runtime.db.scope() as session:
            session.get(ProfileFetch, ana_id).due_at = clock.now
        assert fetcher(runtime, clock).run_once() == 1
        row = fetch_row(runtime, ana_id)
        assert row.due_at is None and "(230) User consent is required" in row.error


def test_it_gives_up_after_the_last_attempt(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        w["emu"].customer(w["account"], ANA).send_text("Hi!")
        w["emu"].flush()
        ana_id = contact(runtime).id
        w["emu"].fail_next(4, "(#4) Application request limit reached", status=400, count=MAX_ATTEMPTS)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            clock.now = fetch_row(runtime, ana_id).due_at
            assert fetcher(runtime, clock).run_once() == 1
            assert fetch_row(runtime, ana_id).attempts == attempt
        row = fetch_row(runtime, ana_id)
        assert row.due_at is None and row.fetched_at is None and contact(runtime).name == ""
