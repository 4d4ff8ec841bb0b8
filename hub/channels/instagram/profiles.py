"""Customers' names from Instagram's User Profile API, asked by a worker, never inside
the webhook: Instagram's webhooks carry only the IGSID, so the ingest queues a
`profile_fetches` row for a nameless contact (once per contact) and this worker asks
GET /{IGSID}?fields=name,username,profile_pic.

The name fills `contacts.name` only while it is empty (a name an operator or a CRM gave
is kept); the username fills `contacts.username`. Meta's rate limits, temporary errors
and a refused token are tried again with backoff (the same delays as deliveries), up to
MAX_ATTEMPTS; "user consent is required" (#230: the customer never wrote) and other
final errors end the row with Meta's words.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.channels.instagram.channels import KIND, client_for
from hub.channels.instagram.client import InstagramError, verdict
from hub.conversations.store import detail_changes, emit_contact_updated
from hub.platform.db import utcnow
from hub.shared.backoff import next_attempt_at
from hub.shared.http import TimeoutSession
from hub.models import Channel, Contact, ProfileFetch

log = logging.getLogger(__name__)
BATCH = 20
LEASE = timedelta(minutes=5)  # a claimed row is due again after this if its worker died
MAX_ATTEMPTS = 8
_fetches = ProfileFetch.__table__
_QUEUE = {
    "postgresql": postgresql.insert(_fetches).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_fetches).on_conflict_do_nothing(),
}


def queue_fetch(session: Session, contact_id: int, channel_id: int, now: datetime) -> None:
    """Ask for this contact's profile (in the ingest's transaction); a contact asked for
    before is not asked again."""
    session.execute(_QUEUE[session.get_bind().dialect.name], {
        "contact_id": contact_id, "channel_id": channel_id, "attempts": 0, "due_at": now, "created_at": now})


@dataclass(frozen=True)
class Claimed:
    contact_id: int
    channel_id: int
    igsid: str
    attempts: int


class ProfileFetcher:
    """Fetches due profiles of every Instagram channel; `run_once` is one round."""

    def __init__(self, runtime: Any, *, clock: Callable[[], datetime] = utcnow, rng: random.Random | None = None):
        self.runtime = runtime
        self.clock = clock
        self.rng = rng
        self.http = TimeoutSession(runtime.config.delivery.http_timeout_seconds)

    def run_once(self) -> int:
        claimed, channels = self._claim(self.clock())
        for item in claimed:
            client = client_for(channels[item.channel_id], self.runtime, self.http)
            try:
                profile = client.profile(item.igsid)
            except InstagramError as exc:
                self._failed(item, exc)
            else:
                self._fetched(item, profile)
        return len(claimed)

    def _claim(self, now: datetime) -> tuple[list[Claimed], dict[int, Channel]]:
        with self.runtime.db.scope() as session:
            rows = list(session.execute(
                select(ProfileFetch, Contact.user_id, Channel)
                .join(Contact, Contact.id == ProfileFetch.contact_id)
                .join(Channel, Channel.id == ProfileFetch.channel_id)
                .where(ProfileFetch.due_at <= now, Channel.kind == KIND, Channel.health != "unhealthy")
                .order_by(ProfileFetch.due_at).limit(BATCH)
                .with_for_update(of=ProfileFetch, skip_locked=True)))
            claimed, channels = [], {}
            for fetch, user_id, channel in rows:
                fetch.due_at = now + LEASE
                claimed.append(Claimed(fetch.contact_id, fetch.channel_id, (user_id or "").removeprefix("ig:"),
                                       fetch.attempts))
                channels[channel.id] = channel
            for channel in channels.values():
                session.expunge(channel)
        return claimed, channels

    def _fetched(self, item: Claimed, profile: dict[str, Any]) -> None:
        now = self.clock()
        with self.runtime.db.scope() as session:
            contact = session.get(Contact, item.contact_id)
            name, username = str(profile.get("name") or "").strip(), str(profile.get("username") or "").strip()
            if contact is not None:
                learned: dict[str, str] = {}
                if name and not contact.name:
                    learned["name"] = name[:256]
                if username and not contact.username:
                    learned["username"] = username[:128]
                changed = detail_changes(contact, learned)
                for key, value in learned.items():
                    setattr(contact, key, value)
                contact.updated_at = now
                session.flush()
                emit_contact_updated(session, contact, changed, now=now)
            fetch = session.get(ProfileFetch, item.contact_id)
            if fetch is not None:
                fetch.attempts, fetch.due_at, fetch.fetched_at, fetch.error = item.attempts + 1, None, now, None

    def _failed(self, item: Claimed, error: InstagramError) -> None:
        now = self.clock()
        kind = verdict(error)
        attempts = item.attempts + 1
        again = kind in ("retry", "throttled", "token") and attempts < MAX_ATTEMPTS
        with self.runtime.db.scope() as session:
            fetch = session.get(ProfileFetch, item.contact_id)
            if fetch is None:
                return
            fetch.attempts, fetch.error = attempts, str(error)[:300]
            retry_at = now + timedelta(seconds=error.retry_after) if error.retry_after is not None else None
            fetch.due_at = next_attempt_at(now, attempts, base=self.runtime.config.delivery.backoff_base_seconds,
                                           cap=self.runtime.config.delivery.backoff_max_seconds, retry_at=retry_at,
                                           rng=self.rng) if again else None
        log.info("instagram profile of contact %s: %s (%s)", item.contact_id, error,
                 "will try again" if again else "not asked again")
