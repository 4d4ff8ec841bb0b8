"""The automations runtime: a worker source that reads the hub's events, keeps runs in
the database and wakes the waiting ones.

Ingest does nothing for automations (the webhook's hot path stays as it is): workers
read message.received, conversation.closed and deal.stage_changed from the events
table behind a cursor, each event in a transaction of its own that also moves the
cursor, so an event is acted on exactly once whatever dies when. Events younger than
SETTLE seconds wait a round: a transaction that took its time earlier than another's
may commit after it. Waits are runs in status waiting with a wake_at: any worker takes
the due ones (FOR UPDATE SKIP LOCKED on PostgreSQL), so they survive restarts and fire
once. HTTP steps call out between two transactions, never inside one.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

import requests
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.automations import actions, engine, store, triggers
from hub.automations.store import STREAM
from hub.platform.db import utcnow
from hub.models import Conversation, Cursor, Event, Message, Run, Scenario, ScenarioVersion, StepLog

log = logging.getLogger(__name__)

SETTLE = timedelta(seconds=1)
BATCH = 200
CHUNK = 50  # events per transaction
DAILY_STEP_LIMIT = 300  # steps per conversation per 24 hours: a bot never spams a chat
STREAM_TYPES = ("message.received", "conversation.closed", "deal.stage_changed")
LIVE_STATUSES = ("active", "waiting", "paused")
SILENCE_EVERY = timedelta(seconds=60)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def live_run(session: Session, conversation_id: int, *, lock: bool = False) -> Run | None:
    query = select(Run).where(Run.conversation_id == conversation_id, Run.status.in_(LIVE_STATUSES))
    if lock and _postgres(session):
        query = query.with_for_update()
    return session.scalar(query)


def _reply_of(message: Message) -> tuple[str, str | None]:
    raw = (message.payload or {}).get("message") or {}
    interactive = raw.get("interactive") or {}
    for kind in ("button_reply", "list_reply"):
        if isinstance(interactive.get(kind), dict):
            return message.text or interactive[kind].get("title") or "", interactive[kind].get("id")
    if isinstance(raw.get("button"), dict):
        return message.text or raw["button"].get("text") or "", raw["button"].get("payload")
    return message.text or "", None


def write_logs(session: Session, run: Run, logs: list[dict[str, Any]], done: list[dict[str, Any]], *,
               now: datetime) -> None:
    rows = [{"run_id": run.id, "conversation_id": run.conversation_id, "step_id": entry.get("step"),
             "kind": entry["kind"], "detail": entry.get("detail") or {}, "at": now} for entry in logs]
    rows += [{"run_id": run.id, "conversation_id": run.conversation_id, "step_id": run.step_id,
              "kind": d.pop("kind"), "detail": d, "at": now} for d in done]
    if rows:
        session.execute(insert(StepLog.__table__), rows)


def steps_today(session: Session, conversation_id: int, *, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(StepLog).where(
        StepLog.conversation_id == conversation_id, StepLog.at > now - timedelta(days=1))) or 0


@dataclass(frozen=True)
class Published:
    """A published scenario as the worker checks triggers against it: read once per
    round of events, not once per event."""

    scenario_id: int
    version_id: int
    definition: dict[str, Any]


def published_now(session: Session) -> list[Published]:
    return [Published(scenario.id, version.id, store.loaded(version)) for scenario, version in store.published(session)]


class Runner:
    """One worker's automations: call run_once() in the worker loop."""

    def __init__(self, runtime: Any, *, clock: Callable[[], datetime] = utcnow,
                 http: Callable[..., requests.Response] | None = None):
        self.runtime = runtime
        self.db = runtime.db
        self.config = runtime.config
        self.clock = clock
        self.http = http or requests.request
        self._silences_at: datetime | None = None

    # -- the worker source -----------------------------------------------------------
    def run_once(self) -> int:
        return self.read_events() + self.wake_due() + self.find_silences()

    # -- advancing a run -------------------------------------------------------------
    def _advance(self, session: Session, run: Run, event: Any, *, now: datetime) -> engine.Outcome | None:
        """Advance `run` by `event` and apply the outcome in `session`; the Http action
        (if any) is left for after the commit (run.state["pending_http"])."""
        if steps_today(session, run.conversation_id, now=now) >= DAILY_STEP_LIMIT:
            self._finish(session, run, "stopped", f"over {DAILY_STEP_LIMIT} steps in this conversation today",
                         now=now)
            return None
        version = session.get(ScenarioVersion, run.version_id)
        conversation = session.get(Conversation, run.conversation_id)
        facts = actions.facts(session, conversation, now=now, config=self.config)
        outcome = engine.advance(store.loaded(version), run.state, event, now=now, facts=facts)
        done = actions.apply(session, run, outcome, now=now, config=self.config)
        http = next((a for a in outcome.actions if isinstance(a, engine.Http)), None)
        state = dict(outcome.state)
        state.pop("pending_http", None)
        if http is not None:
            state["pending_http"] = {"url": http.url, "method": http.method, "body": http.body,
                                     "timeout": http.timeout, "secret_env": http.secret_env}
        run.state = state
        run.step_id = state.get("step")
        write_logs(session, run, outcome.logs, done, now=now)
        if outcome.status == "waiting":
            run.status = "waiting"
            # An HTTP call is retried if the worker dies before its answer is applied.
            run.wake_at = outcome.wake_at if http is None else now + timedelta(seconds=http.timeout + 60)
        else:
            self._finish(session, run, outcome.status, outcome.reason, now=now)
        run.updated_at = now
        return outcome

    def _finish(self, session: Session, run: Run, status: str, reason: str | None, *, now: datetime) -> None:
        run.status, run.reason, run.finished_at, run.wake_at = status, reason, now, None
        if reason and status in ("stopped", "failed"):
            write_logs(session, run, [{"step": run.step_id, "kind": status, "detail": {"reason": reason}}], [],
                       now=now)

    def _call_pending(self, run_id: int) -> None:
        """Do the run's pending HTTP call (outside any transaction), then advance it."""
        while True:
            with self.db.scope() as session:
                run = session.get(Run, run_id)
                if run is None or run.status != "waiting" or not (run.state or {}).get("pending_http"):
                    return
                call = dict(run.state["pending_http"])
            result = self._http(call)
            with self.db.scope() as session:
                run = self._lock_run(session, run_id)
                if run is None or run.status != "waiting" or (run.state or {}).get("pending_http") != call:
                    return
                self._advance(session, run, result, now=self.clock())

    def _http(self, call: dict[str, Any]) -> engine.HttpResult:
        body = json.dumps(call["body"], ensure_ascii=False).encode() if call["method"] == "POST" else None
        headers = {"Content-Type": "application/json", "User-Agent": "hub-automations"}
        secret = os.environ.get(call["secret_env"] or "") if call.get("secret_env") else None
        if secret:
            stamp = str(int(self.clock().timestamp()))
            signed = stamp.encode() + b"." + (body or b"")
            headers["X-Hub-Timestamp"] = stamp
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        try:
            response = self.http(call["method"], call["url"], data=body, headers=headers, timeout=call["timeout"],
                                 allow_redirects=False)
        except requests.RequestException as exc:
            return engine.HttpResult(False, error=f"{type(exc).__name__}")
        if not 200 <= response.status_code < 300:
            return engine.HttpResult(False, error=f"HTTP {response.status_code}")
        try:
            return engine.HttpResult(True, response.json() if response.content else {})
        except ValueError:
            return engine.HttpResult(False, error="the answer is not JSON")

    def _lock_run(self, session: Session, run_id: int) -> Run | None:
        query = select(Run).where(Run.id == run_id)
        if _postgres(session):
            query = query.with_for_update()
        return session.scalar(query)

    # -- starting --------------------------------------------------------------------
    def start(self, session: Session, chosen: "Published", conversation: Conversation,
              trigger: dict[str, Any], *, now: datetime, delay: timedelta = timedelta(0)) -> Run | None:
        """A new run of the scenario in the conversation (None: one is live there already)."""
        run = Run(scenario_id=chosen.scenario_id, version_id=chosen.version_id, conversation_id=conversation.id,
                  contact_id=conversation.contact_id, status="waiting", trigger=trigger, started_at=now,
                  updated_at=now, state=engine.delayed_start(trigger, now + delay), wake_at=now + delay)
        try:
            with session.begin_nested():
                session.add(run)
                session.flush()
        except IntegrityError:  # another live run took the conversation first
            return None
        write_logs(session, run, [{"step": None, "kind": "started", "detail": {"trigger": trigger}}], [], now=now)
        if not delay:
            self._advance(session, run, engine.Timeout(), now=now)
        return run

    def _cooled(self, session: Session, scenario_id: int, conversation_id: int, minutes: int, now: datetime) -> bool:
        if not minutes:
            return True
        return session.scalar(select(Run.id).where(
            Run.scenario_id == scenario_id, Run.conversation_id == conversation_id,
            Run.started_at > now - timedelta(minutes=minutes)).limit(1)) is None

    def _try_triggers(self, session: Session, happening: triggers.Happening, conversation: Conversation,
                      published: list["Published"], *, now: datetime) -> Run | None:
        for chosen in published:
            definition = chosen.definition
            seen = triggers.matches(definition["trigger"], happening, channel_ids=definition.get("channel_ids"))
            if seen is None:
                continue
            if not self._cooled(session, chosen.scenario_id, conversation.id, definition.get("cooldown_minutes", 0),
                                now):
                continue
            delay = timedelta(minutes=triggers.delay_minutes(definition["trigger"]))
            return self.start(session, chosen, conversation, seen, now=now, delay=delay)
        return None

    # -- the event stream ------------------------------------------------------------
    def read_events(self) -> int:
        """Up to BATCH events, CHUNK of them per transaction (one commit per event cost the
        worker more than all its trigger checks); a chunk ends early after an event that
        left an HTTP call to make, so that the call is made before the next event is read."""
        now = self.clock()
        with self.db.scope() as session:
            cursor = session.get(Cursor, STREAM)
            if cursor is None:
                return 0  # nothing was ever published
            at = (cursor.last_at, cursor.last_id or "")
            query = select(Event.id, Event.type, Event.occurred_at, Event.data).where(
                Event.type.in_(STREAM_TYPES), Event.occurred_at <= now - SETTLE,
                or_(Event.occurred_at > cursor.last_at,
                    and_(Event.occurred_at == cursor.last_at, Event.id > (cursor.last_id or ""))),
            ).order_by(Event.occurred_at, Event.id).limit(BATCH)
            batch = session.execute(query).all()
            published = published_now(session) if batch else []
        done = 0
        while done < len(batch):
            pending: list[int] = []
            with self.db.scope() as session:
                cursor = self._claim_cursor(session, at)
                if cursor is None:
                    return done  # another worker is reading, or read these
                for event in batch[done:done + CHUNK]:
                    pending = self._on_event(session, event, published, now=self.clock())
                    done += 1
                    cursor.last_at, cursor.last_id = event.occurred_at, event.id
                    if pending:
                        break
                at = (cursor.last_at, cursor.last_id)
            for run_id in pending:
                self._call_pending(run_id)
        return done

    def _claim_cursor(self, session: Session, at: tuple[datetime, str]) -> Cursor | None:
        """The cursor, locked, if it is still where this worker read the events from."""
        query = select(Cursor).where(Cursor.name == STREAM)
        if _postgres(session):
            query = query.with_for_update(skip_locked=True)
        cursor = session.scalar(query)
        if cursor is None or (cursor.last_at, cursor.last_id or "") != at:
            return None
        return cursor

    def _on_event(self, session: Session, event: Any, published: list["Published"], *,
                  now: datetime) -> list[int]:
        data = event.data or {}
        conversation_id = (data.get("conversation") or {}).get("id")
        conversation = session.get(Conversation, conversation_id) if conversation_id else None
        if conversation is None:
            return []
        run = live_run(session, conversation.id, lock=True)
        if event.type == "message.received":
            message = session.get(Message, (data.get("message") or {}).get("id"))
            if message is None or message.direction != "in" or message.type in ("reaction", "read"):
                return []
            text, reply_id = _reply_of(message)
            if run is not None:
                if run.status == "waiting" and (run.state or {}).get("waiting") in ("reply", "wait"):
                    self._advance(session, run, engine.Reply(text, reply_id), now=now)
                    return [run.id] if (run.state or {}).get("pending_http") else []
                return []  # paused by an operator, or busy with an HTTP call
            if not published:
                return []
            # Whether the message opened the conversation matters to one trigger only.
            started = any(p.definition["trigger"]["type"] == "conversation_started" for p in published) and \
                session.scalar(select(func.count()).select_from(Message).where(
                    Message.conversation_id == conversation.id, Message.direction == "in",
                    Message.id < message.id)) == 0
            happening = triggers.Happening(kind="message", at=message.sent_at, channel_id=conversation.channel_id,
                                           text=text, reply_id=reply_id, started=started,
                                           lead_source=conversation.lead_source or {})
            new = self._try_triggers(session, happening, conversation, published, now=now)
            return [new.id] if new is not None and (new.state or {}).get("pending_http") else []
        if event.type == "conversation.closed":
            if run is not None:
                self._finish(session, run, "stopped", "the conversation was closed", now=now)
                session.flush()
            new = self._try_triggers(session, triggers.Happening(kind="conversation_closed", at=event.occurred_at,
                                                                 channel_id=conversation.channel_id),
                                     conversation, published, now=now) if published else None
            return [new.id] if new is not None and (new.state or {}).get("pending_http") else []
        if event.type == "deal.stage_changed" and run is None:
            deal = data.get("deal") or {}
            for stage in (deal.get("stage_name"), deal.get("stage")):
                if not stage:
                    continue
                new = self._try_triggers(session, triggers.Happening(kind="deal_stage", at=event.occurred_at,
                                                                     channel_id=conversation.channel_id,
                                                                     stage=str(stage)),
                                         conversation, published, now=now)
                if new is not None:
                    return [new.id] if (new.state or {}).get("pending_http") else []
        return []

    # -- waits -------------------------------------------------------------------------
    def wake_due(self) -> int:
        now = self.clock()
        handled = 0
        with self.db.scope() as session:
            ids = list(session.scalars(select(Run.id).where(Run.status == "waiting", Run.wake_at <= now)
                                       .order_by(Run.wake_at).limit(BATCH)))
        for run_id in ids:
            with self.db.scope() as session:
                query = select(Run).where(Run.id == run_id, Run.status == "waiting", Run.wake_at <= now)
                if _postgres(session):
                    query = query.with_for_update(skip_locked=True)
                run = session.scalar(query)
                if run is None:
                    continue  # taken by another worker, or answered meanwhile
                handled += 1
                if (run.state or {}).get("pending_http"):
                    run.wake_at = now + timedelta(seconds=run.state["pending_http"]["timeout"] + 60)
                else:
                    self._advance(session, run, engine.Timeout(), now=now)
                pending = bool((run.state or {}).get("pending_http"))
            if pending:
                self._call_pending(run_id)
        return handled

    # -- silences (no reply for N hours) ----------------------------------------------
    def find_silences(self) -> int:
        now = self.clock()
        if self._silences_at is not None and now - self._silences_at < SILENCE_EVERY:
            return 0
        self._silences_at = now
        started = 0
        with self.db.scope() as session:
            chosen = [p for p in published_now(session) if p.definition["trigger"]["type"] == "no_reply"]
        for one in chosen:
            hours = float(one.definition["trigger"]["hours"])
            cutoff = now - timedelta(hours=hours)
            with self.db.scope() as session:
                later_run = select(Run.id).where(Run.conversation_id == Conversation.id, or_(
                    Run.status.in_(LIVE_STATUSES),
                    and_(Run.scenario_id == one.scenario_id, Run.started_at >= Conversation.last_inbound_at)))
                silent = list(session.scalars(select(Conversation).where(
                    Conversation.status == "open", Conversation.last_inbound_at <= cutoff,
                    Conversation.last_inbound_at > cutoff - timedelta(days=1),
                    Conversation.last_message_at > Conversation.last_inbound_at,
                    ~later_run.exists()).order_by(Conversation.id).limit(BATCH)))
                for conversation in silent:
                    silent_hours = (now - conversation.last_inbound_at).total_seconds() / 3600
                    happening = triggers.Happening(kind="no_reply", at=now, channel_id=conversation.channel_id,
                                                   silent_hours=silent_hours)
                    if self._try_triggers(session, happening, conversation, [one], now=now):
                        started += 1
        return started


def pause_for_operator(session: Session, conversation_id: int | None, *, now: datetime) -> None:
    """An operator wrote in the conversation: its bot steps aside (the run is paused)."""
    if conversation_id is None:
        return
    session.execute(update(Run).where(Run.conversation_id == conversation_id, Run.status.in_(("active", "waiting")))
                    .values(status="paused", reason="an operator wrote", wake_at=None, updated_at=now)
                    .execution_options(synchronize_session=False))


def start_manually(session: Session, scenario: Scenario, conversation: Conversation, *, now: datetime,
                   by: str) -> Run:
    """A run started by an operator or the API: created here, its first steps taken by a
    worker right after (an HTTP step never runs inside the request)."""
    version = session.get(ScenarioVersion, scenario.published_version_id) if scenario.published_version_id else None
    if version is None:
        raise store.ScenarioRefused(["scenario: it is not published (a draft never runs)"])
    if conversation.status != "open":
        raise store.ScenarioRefused(["conversation_id: the conversation is closed"])
    trigger = {"type": "manual", "by": by}
    run = Run(scenario_id=scenario.id, version_id=version.id, conversation_id=conversation.id,
              contact_id=conversation.contact_id, status="waiting", trigger=trigger, started_at=now, updated_at=now,
              state=engine.delayed_start(trigger, now), wake_at=now)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        raise store.ScenarioRefused(["conversation_id: a scenario is already running in this conversation"]) from None
    write_logs(session, run, [{"step": None, "kind": "started", "detail": {"trigger": trigger}}], [], now=now)
    return run


