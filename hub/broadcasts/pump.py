"""The pump: worker work that moves broadcasts along, one short transaction per step.

Each step of a sending broadcast, under its row lock: bring outcomes up to date, pause
(or resume) on the number's quality, the template's status and the failure rate, and —
inside the schedule — queue the next slice of recipients as ordinary outbound messages.
The WhatsApp sender sends them at the number's throughput; the slice is what that
throughput sends in two pacing intervals, less what is still waiting, so a pause takes
hold within one interval and nothing piles up. A recipient's message is written in the
same transaction as the recipient's `queued` mark: each is queued once.

One pump at a time across the deployment (a lease) keeps the portfolio's messaging
limit shared fairly by running broadcasts.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub import leases
from hub.broadcasts import compose, consent, limits, outcomes, schedule
from hub.broadcasts.lifecycle import _locked, pause_locked
from hub.channels.base import Outgoing, SendRefused
from hub.channels.whatsapp import templates as tpl
from hub.db import utcnow
from hub.models import Broadcast, BroadcastRecipient, Channel, Conversation, Message, Template
from hub.runtime import Runtime

log = logging.getLogger(__name__)
BAD_QUALITY = ("RED", "FLAGGED")
BAD_TEMPLATE = ("PAUSED", "DISABLED")
LEASE = "broadcasts:pump"


def pause_cause(session: Session, broadcast: Broadcast, channel: Channel,
                template: Template | None) -> tuple[str, str] | None:
    """(paused_by, reason) when the broadcast must stop now, else None."""
    if (channel.quality_rating or "").upper() in BAD_QUALITY:
        return "quality", f"the number's quality rating is {channel.quality_rating}"
    if template is None:
        return "template", f"template {broadcast.template_name} ({broadcast.template_language}) no longer exists"
    if template.status in BAD_TEMPLATE:
        return "template", f"template {template.name} ({template.language}) is {template.status}"
    return failure_cause(session, broadcast)


def failure_cause(session: Session, broadcast: Broadcast) -> tuple[str, str] | None:
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
        return "failures", (f"{failed} of the last {len(last)} messages failed, over the threshold of "
                            f"{broadcast.failure_threshold:.0%}")
    return None


class BroadcastPump:
    def __init__(self, runtime: Runtime, owner: str = "pump", *, clock: Callable[[], datetime] = utcnow):
        self.runtime = runtime
        self.owner = owner
        self.clock = clock

    def run_once(self) -> int:
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
        return len(due) + sum(self.step(broadcast_id) for broadcast_id in active)

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
                    broadcast.updated_at = now
                    work += 1
                else:
                    return work
            elif cause is not None:
                log.warning("broadcast %s pauses: %s", broadcast.id, cause[1])
                pause_locked(session, broadcast, reason=cause[1], by=cause[0], now=now)
                return work + 1
            if schedule.may_send(now, timezone=broadcast.timezone, allowed_days=broadcast.allowed_days,
                                 window_start=broadcast.window_start, window_end=broadcast.window_end):
                work += self._queue_slice(session, broadcast, channel, template, now=now)
            work += self._complete_if_done(session, broadcast, now=now)
            return work

    def _budget(self, session: Session, channel: Channel) -> int:
        """What the number sends in two pacing intervals, less what waits in its outbox."""
        waiting = session.scalar(
            select(func.count()).select_from(Message).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.channel_id == channel.id, Message.direction == "out",
                   Message.status.in_(("queued", "sending")))) or 0
        return max(0, math.ceil(channel.mps * self.runtime.config.broadcasts.pacing_seconds * 2) - waiting)

    def _queue_slice(self, session: Session, broadcast: Broadcast, channel: Channel, template: Template,
                     *, now: datetime) -> int:
        from hub.channels.sending import queue

        budget = self._budget(session, channel)
        if budget <= 0:
            return 0
        r = BroadcastRecipient
        pending = list(session.scalars(select(r).where(r.broadcast_id == broadcast.id, r.status == "pending")
                                       .order_by(r.id).limit(budget)))
        if not pending:
            return 0
        phones = [p.phone for p in pending]
        opted_out = consent.opted_out_phones(session, phones, broadcast.subscription)
        room = limits.room(session, now=now)
        left = room.left
        recent = limits.reached_recently(session, phones, now=now) if left is not None else set()
        done = 0
        for recipient in pending:
            if recipient.phone in opted_out:
                self._skip(recipient, "opted_out", now)
                done += 1
                continue
            if left is not None and recipient.phone not in recent:
                if left <= 0:
                    break  # the portfolio's 24-hour limit: the rest waits for room
                left -= 1
            given, missing = compose.fill(template, broadcast.variables,
                                          {"phone": recipient.phone, "variables": recipient.variables},
                                          header=broadcast.header, buttons=broadcast.buttons)
            if given is None:
                self._skip(recipient, "missing_variables: " + ", ".join(missing), now)
                done += 1
                continue
            try:
                message = queue(session, Outgoing(kind="template", template=given, channel_id=channel.id,
                                                  to=recipient.phone), now=now, config=self.runtime.config)
            except SendRefused as exc:
                self._skip(recipient, f"{exc.code}: {exc}", now)
                done += 1
                continue
            conversation = session.get(Conversation, message.conversation_id)
            recipient.status, recipient.message_id, recipient.queued_at = "queued", message.id, now
            recipient.contact_id, recipient.message_status, recipient.updated_at = conversation.contact_id, "queued", now
            done += 1
        session.flush()
        return done

    @staticmethod
    def _skip(recipient: BroadcastRecipient, reason: str, now: datetime) -> None:
        recipient.status, recipient.reason, recipient.updated_at = "skipped", reason[:500], now

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
