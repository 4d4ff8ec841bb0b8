"""The pump: worker work that moves broadcasts along, one short transaction per step.

Each step of a sending broadcast, under its row lock: bring outcomes up to date, pause
(or resume) on the number's quality, the template's status and the failure rate, and —
inside the schedule — queue the next slice of recipients as ordinary outbound messages.
The WhatsApp sender sends them at the number's throughput; the slice is what that
throughput sends in two pacing intervals, each message due at its own time, so a pause
takes hold within one interval, nothing piles up and nothing goes out as a burst. A recipient's message is written in the
same transaction as the recipient's `queued` mark: each is queued once.

One pump at a time across the deployment (a lease) keeps the portfolio's messaging
limit shared fairly by running broadcasts.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Callable

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.orm import Session

from hub.jobs import leases
from hub.broadcasts import compose, consent, limits, outcomes, pauses, schedule, targets
from hub.broadcasts.lifecycle import _locked, pause_locked
from hub.channels.base import SendRefused
from hub.channels.whatsapp.templates import parameters as tpl
from hub.platform.db import utcnow
from hub.models import Broadcast, BroadcastRecipient, Channel, Conversation, Message, Template
from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
BAD_QUALITY = ("RED", "FLAGGED")
BAD_TEMPLATE = ("PAUSED", "DISABLED")
LEASE = "broadcasts:pump"
PACE = 0.97  # of the number's messages per second: the sender's window holds a slot a little over a second
TICK = 0.25  # seconds: messages of a tick are due together
MAX_WAIT = 0.05  # seconds the pump waits for a message coming due (other work waits meanwhile)
CHUNK = 500  # recipients marked by one UPDATE (its parameters stay within both databases' limits)


def pause_cause(session: Session, broadcast: Broadcast, channel: Channel,
                template: Template | None) -> pauses.Cause | None:
    """Why the broadcast must stop now, else None."""
    if (channel.quality_rating or "").upper() in BAD_QUALITY:
        return pauses.quality(channel.quality_rating)
    if template is None:
        return pauses.template_missing(broadcast.template_name, broadcast.template_language)
    if template.status in BAD_TEMPLATE:
        return pauses.template_status(template.name, template.language, template.status)
    return failure_cause(session, broadcast)


def failure_cause(session: Session, broadcast: Broadcast) -> pauses.Cause | None:
    window = max(1, broadcast.failure_window)
    r = BroadcastRecipient
    last = list(session.scalars(
        select(r.status).where(r.broadcast_id == broadcast.id, r.status.in_(("sent", "delivered", "read",
                                                                           "replied", "failed")))
        .order_by(r.updated_at.desc(), r.id.desc()).limit(window)))
    if len(last) < min(window, 10):
        return None
    failed = sum(1 for s in last if s == "failed")
    if failed / len(last) > broadcast.failure_threshold:
        return pauses.failures(failed, len(last), broadcast.failure_threshold)
    return None


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def tick_of(at: datetime) -> int:
    """The tick (of TICK seconds since the epoch) `at` falls in."""
    return math.floor((at - EPOCH) / timedelta(seconds=TICK))


def tick_start(tick: int) -> datetime:
    return EPOCH + timedelta(seconds=TICK) * tick


@dataclass(frozen=True)
class Pace:
    """The number's schedule: tick i holds floor(r*(i+1)) - floor(r*i) messages for r
    messages a tick (a fraction: 19.4 at 80/s), so the rate is PACE of the limit
    exactly, not what a whole number a tick rounds it down to."""
    first: int  # the tick the next message goes in
    used: int  # messages already due in it
    per_tick: Fraction
    room: int  # how many may be queued now

    def due(self, n: int) -> datetime:
        """When the n-th message queued now (from 0) is due."""
        r = self.per_tick
        position = math.floor(r * self.first) + self.used + n  # counted from the epoch's first tick
        return tick_start(max(self.first, math.ceil((position + 1) / r - 1)))


class BroadcastPump:
    def __init__(self, runtime: Runtime, owner: str = "pump", *, clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep, step_seconds: float | None = None):
        """step_seconds: how often each broadcast is stepped at most (default a quarter of
        [broadcasts] pacing_seconds; the worker calls the pump on every round)."""
        self.runtime = runtime
        self.owner = owner
        self.clock = clock
        self.sleep = sleep
        self.step_seconds = runtime.config.broadcasts.pacing_seconds / 4 if step_seconds is None else step_seconds
        self._stepped: dict[int, float] = {}
        self._last_round = -1e9

    def run_once(self) -> int:
        if time.monotonic() - self._last_round < self.step_seconds:
            return self._keep_awake()
        self._last_round = time.monotonic()
        db = self.runtime.db
        pacing = self.runtime.config.broadcasts.pacing_seconds
        if not leases.try_acquire(db, LEASE, self.owner, now=self.clock(), ttl=max(30.0, pacing * 10)):
            return 0
        with db.scope() as session:
            now = self.clock()
            due = list(session.scalars(select(Broadcast.id).where(Broadcast.status == "scheduled", (
                Broadcast.start_at.is_(None)) | (Broadcast.start_at <= now))))
            for broadcast_id in due:
                session.execute(update(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.status == "scheduled")
                                .values(status="sending", started_at=now, updated_at=now))
            active = list(session.scalars(select(Broadcast.id).where(Broadcast.status.in_(("sending", "paused")))
                                          .order_by(Broadcast.id)))
        work = len(due)
        for broadcast_id in active:
            if time.monotonic() - self._stepped.get(broadcast_id, -1e9) >= self.step_seconds:
                self._stepped[broadcast_id] = time.monotonic()
                work += self.step(broadcast_id)
        return work + self._keep_awake()

    def _keep_awake(self) -> int:
        """1 while a broadcast message comes due before the worker's next poll, having
        waited for it (at most MAX_WAIT): the worker then goes round again at once and
        the sender finds it due on time, instead of a poll's worth at once after a sleep."""
        poll = self.runtime.config.worker.poll_seconds
        with self.runtime.db.scope() as session:
            now = self.clock()
            soonest = session.scalar(
                select(func.min(Message.next_attempt_at))
                .join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
                .where(Message.status == "queued", Message.next_attempt_at <= now + timedelta(seconds=poll)))
        if soonest is None:
            return 0
        wait = (soonest - now).total_seconds()
        if wait > 0:
            self.sleep(min(wait, MAX_WAIT))
        return 1

    def step(self, broadcast_id: int) -> int:
        with self.runtime.db.scope() as session:
            now = self.clock()
            broadcast = _locked(session, broadcast_id)
            if broadcast.status not in ("sending", "paused"):
                return 0
            work = outcomes.sync(session, broadcast, now=now)
            channel = session.get(Channel, broadcast.channel_id)
            template = tpl.find(session, channel.waba_id, broadcast.template_name, broadcast.template_language)
            cause = pause_cause(session, broadcast, channel, template)
            if broadcast.status == "paused":
                if broadcast.paused_by in ("quality", "template") and cause is None:
                    log.info("broadcast %s resumes: %s cleared", broadcast.id, broadcast.paused_reason)
                    broadcast.status, broadcast.paused_reason, broadcast.paused_by = "sending", None, None
                    broadcast.paused_cause = None
                    broadcast.updated_at = now
                    work += 1
                else:
                    return work
            elif cause is not None:
                log.warning("broadcast %s pauses: %s", broadcast.id, cause.reason)
                pause_locked(session, broadcast, cause, now=now)
                return work + 1
            if schedule.may_send(now, timezone=broadcast.timezone, allowed_days=broadcast.allowed_days,
                                 window_start=broadcast.window_start, window_end=broadcast.window_end):
                work += self._queue_slice(session, broadcast, channel, template, now=now)
            work += self._complete_if_done(session, broadcast, now=now)
            return work

    def _pace(self, session: Session, channel: Channel, now: datetime) -> "Pace":
        """Where the next messages go in the number's schedule. Messages are due in ticks
        of TICK seconds, PACE of the number's throughput spread over them, after those
        already waiting and up to two pacing intervals ahead: the sender takes a tick's
        messages together. The sender's own window keeps Meta's second under the limit
        (130429) whatever the schedule; the schedule keeps the sender just under it."""
        rate = max(0.1, channel.mps * PACE)
        per_tick = Fraction(max(1, round(rate * TICK * 1000)), 1000)
        horizon = now + timedelta(seconds=2 * self.runtime.config.broadcasts.pacing_seconds)
        waiting = (select(Message.next_attempt_at)
                   .join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
                   .join(Broadcast, Broadcast.id == BroadcastRecipient.broadcast_id)
                   .where(Broadcast.channel_id == channel.id, Message.status.in_(("queued", "sending")),
                          Message.next_attempt_at <= horizon)  # a retry due later is not part of the pace
                   .subquery())
        count, last = session.execute(select(func.count(), func.max(waiting.c.next_attempt_at))).one()
        if last is None or last < now:
            first, used = tick_of(now) + (tick_start(tick_of(now)) < now), 0
        else:
            first = tick_of(last)
            used = session.scalar(select(func.count()).select_from(waiting).where(
                waiting.c.next_attempt_at >= tick_start(first), waiting.c.next_attempt_at < tick_start(first + 1)))
        end = tick_of(horizon) + 1  # the ticks up to the horizon's
        room = min(math.floor(per_tick * end) - math.floor(per_tick * first) - used,
                   math.ceil(2 * self.runtime.config.broadcasts.pacing_seconds * rate) + math.ceil(per_tick) - count)
        return Pace(first=first, used=used, per_tick=per_tick, room=max(0, room))

    def _queue_slice(self, session: Session, broadcast: Broadcast, channel: Channel, template: Template,
                     *, now: datetime) -> int:
        """The next pending recipients, queued or skipped: their messages in one INSERT,
        their marks in one UPDATE (a recipient is queued in the transaction that writes
        its message)."""
        from hub.channels.whatsapp.outbound.queue import prepare_template, queue_message, write_prepared

        pace = self._pace(session, channel, now)
        budget = pace.room
        if budget <= 0:
            return 0
        r = BroadcastRecipient
        pending = session.execute(select(r.id, r.phone, r.variables).where(
            r.broadcast_id == broadcast.id, r.status == "pending").order_by(r.id).limit(budget)).all()
        if not pending:
            return 0
        phones = [p.phone for p in pending]
        no_consent = consent.skip_reasons(
            session, phones, broadcast.subscription,
            require_marketing_opt_in=self.runtime.config.broadcasts.require_marketing_opt_in)
        room = limits.room(session, now=now, count_unlimited=False)
        left = room.left
        recent = limits.reached_recently(session, phones, now=now) if left is not None else set()
        skipped: dict[int, str] = {}
        ready: list[tuple[Any, Any]] = []  # recipients to queue now, with their template
        for recipient in pending:
            if recipient.phone in no_consent:
                skipped[recipient.id] = no_consent[recipient.phone]
                continue
            if left is not None and recipient.phone not in recent:
                if left <= 0:
                    break  # the portfolio's 24-hour limit: the rest waits for room
                left -= 1
            given, missing = compose.fill(template, broadcast.variables,
                                          {"phone": recipient.phone, "variables": recipient.variables},
                                          header=broadcast.header, buttons=broadcast.buttons)
            if given is None:
                skipped[recipient.id] = "missing_variables: " + ", ".join(missing)
                continue
            ready.append((recipient, given))
        conversation_of = targets.open_conversations(session, channel.id, [r.phone for r, _ in ready], now=now)
        prepared: list[tuple[Any, datetime]] = []  # (checked message, due) to write together
        prepared_for: list[tuple[int, int]] = []  # their (recipient, contact)
        queued: dict[int, tuple[int, int]] = {}  # recipient -> (message, contact)
        for recipient, given in ready:
            target = conversation_of.get(recipient.phone)
            due = pace.due(len(prepared) + len(queued))
            try:
                if target is not None:
                    # Broadcasts are WhatsApp's alone: its queue takes the slice's template row
                    # (read once per slice) and checks each message as queueing it would.
                    prepared.append((prepare_template(session, channel=channel, conversation=target[0],
                                                      contact=target[1], template=given, template_row=template),
                                     due))
                    prepared_for.append((recipient.id, target[1].id))
                    continue
                message = queue_message(session, kind="template", template=given, channel_id=channel.id,
                                        to=recipient.phone, template_row=template, due_at=due, now=now)
            except SendRefused as exc:
                skipped[recipient.id] = f"{exc.code}: {exc}"
                continue
            queued[recipient.id] = (message.id, session.get(Conversation, message.conversation_id).contact_id)
        for (recipient_id, contact_id), message_id in zip(prepared_for, write_prepared(session, prepared, now=now)):
            queued[recipient_id] = (message_id, contact_id)
        self._mark(session, queued, skipped, now=now)
        return len(queued) + len(skipped)

    @staticmethod
    def _mark(session: Session, queued: dict[int, tuple[int, int]], skipped: dict[int, str], *,
              now: datetime) -> None:
        """Recipients queued (with their message and contact) or skipped (with the reason),
        in one UPDATE per CHUNK."""
        r = BroadcastRecipient
        ids = sorted({*queued, *skipped})
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            q = [i for i in chunk if i in queued]
            s = [i for i in chunk if i in skipped]
            is_queued = r.id.in_(q) if q else literal(False)
            values: dict[str, Any] = {
                "status": case((is_queued, literal("queued")), else_=literal("skipped")),
                "message_status": case((is_queued, literal("queued")), else_=r.message_status),
                "queued_at": case((is_queued, literal(now, r.queued_at.type)), else_=r.queued_at),
                "updated_at": now}
            if q:
                values["message_id"] = case({i: queued[i][0] for i in q}, value=r.id, else_=r.message_id)
                values["contact_id"] = case({i: queued[i][1] for i in q}, value=r.id, else_=r.contact_id)
            if s:
                values["reason"] = case({i: skipped[i][:500] for i in s}, value=r.id, else_=r.reason)
            session.execute(update(r).where(r.id.in_(chunk)).values(**values)
                            .execution_options(synchronize_session=False))

    def _complete_if_done(self, session: Session, broadcast: Broadcast, *, now: datetime) -> int:
        if broadcast.status != "sending":
            return 0
        left = session.scalar(select(func.count()).select_from(BroadcastRecipient).where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            BroadcastRecipient.status.in_(("pending", "queued"))))
        if left:
            return 0
        broadcast.status, broadcast.finished_at, broadcast.updated_at = "completed", now, now
        return 1
