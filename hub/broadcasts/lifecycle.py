"""A broadcast's life: made (draft, every recipient written, nothing sent), scheduled,
sending, paused (by hand or by itself), completed or cancelled.

Everything a broadcast could refuse is refused when it is made, naming the field and
the rows, before anything is written: a template that is not approved, variables that
do not fit it or come out empty for some rows, a schedule in the past.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hub.broadcasts import audiences, compose, consent, pauses, schedule
from hub.broadcasts.problems import BroadcastProblem
from hub.broadcasts.recipients import unqueue
from hub.broadcasts.results import counts, retryable_failures
from hub.channels.whatsapp.templates import parameters as tpl
from hub.events.outbox import emit
from hub.models import Audience, Broadcast, BroadcastRecipient, Channel, Message

__all__ = ["BroadcastProblem", "cancel", "create", "pause", "pause_locked", "resume", "retry_failed", "start"]

TRANSITIONS = {
    "schedule": ("draft",),
    "pause": ("scheduled", "sending"),
    "resume": ("paused",),
    "cancel": ("draft", "scheduled", "sending", "paused"),
}


def _template(session: Session, channel: Channel, name: str, language: str):
    template = tpl.find(session, channel.waba_id, name, language)
    if template is None:
        raise BroadcastProblem(f"no template {name!r} in {language!r} on this channel's account; sync templates",
                               field="template")
    if template.status != "APPROVED":
        raise BroadcastProblem(f"template {name} ({language}) is {template.status}, not APPROVED", field="template")
    return template


def create(session: Session, *, name: str, channel_id: int, audience_id: int, template_name: str,
           template_language: str, variables: Any, header: Any = None, buttons: list[dict[str, Any]] | None = None,
           start_at: datetime | None = None, timezone: str = "UTC", allowed_days: list[int] | None = None,
           window_start: str = "00:00", window_end: str = "24:00", failure_threshold: float = 0.2,
           failure_window: int = 50, retry_of_id: int | None = None, members: list[dict[str, Any]] | None = None,
           now: datetime) -> Broadcast:
    """A draft with all its recipients (pending, or skipped: opted out). `members`
    replaces the audience's (a retry of failures)."""
    channel = session.get(Channel, channel_id)
    if channel is None or channel.kind != "whatsapp":
        raise BroadcastProblem(f"no WhatsApp channel with id {channel_id}", field="channel_id", status=404)
    audience = session.get(Audience, audience_id) if audience_id is not None else None
    if members is None and audience is None:
        raise BroadcastProblem(f"no audience with id {audience_id}", field="audience_id", status=404)
    template = _template(session, channel, template_name, template_language)
    days = allowed_days if allowed_days is not None else [1, 2, 3, 4, 5, 6, 7]
    try:
        schedule.validate(start_at=start_at, timezone=timezone, allowed_days=days, window_start=window_start,
                          window_end=window_end, now=now)
    except schedule.ScheduleProblem as exc:
        raise BroadcastProblem(str(exc), field=exc.field) from None
    if not 0 < failure_threshold <= 1:
        raise BroadcastProblem("failure_threshold must be above 0 and at most 1", field="failure_threshold")
    columns = (audience.columns if audience is not None and audience.kind == "csv" else ["name"])
    if members is not None:
        columns = sorted({k for m in members for k in (m.get("variables") or {})})
    try:
        compose.check_spec(template, variables, columns, header)
    except compose.CompositionProblem as exc:
        raise BroadcastProblem(str(exc), field=exc.field) from None
    if members is None:
        members = audiences.members(session, audience, now=now, contact_fields=compose.custom_fields(variables),
                                    crm=compose.crm_sources(variables))
    if not members:
        raise BroadcastProblem("the audience has nobody to send to", field="audience_id")
    missing = compose.rows_missing_variables(template, compose.without_crm(variables), members)
    if missing:
        rows = ", ".join(str(m["row"] if m.get("row") is not None else m["phone"]) for m in missing[:20])
        raise BroadcastProblem(f"{len(missing)} recipient(s) lack template variables (rows {rows}"
                               f"{', ...' if len(missing) > 20 else ''}); fill them in or choose other sources",
                               field="variables", rows=missing[:500])
    try:  # the header and buttons are the same for everyone: the first recipient tells
        tpl.build(template, compose.fill(template, compose.without_crm(variables), members[0], header=header,
                                         buttons=buttons)[0])
    except tpl.TemplateProblem as exc:
        field = "header" if "header" in str(exc) else "buttons" if "button" in str(exc) else "variables"
        raise BroadcastProblem(f"{field}: {exc}", field=field) from None
    subscription = "utility" if (template.category or "").upper() in ("UTILITY", "AUTHENTICATION") else "marketing"
    broadcast = Broadcast(
        name=name, channel_id=channel.id, audience_id=audience.id if audience is not None else None,
        template_name=template.name, template_language=template.language, subscription=subscription,
        variables=variables, header=header, buttons=buttons, status="draft", start_at=start_at, timezone=timezone,
        allowed_days=days, window_start=window_start, window_end=window_end,
        failure_threshold=failure_threshold, failure_window=failure_window, retry_of_id=retry_of_id,
        created_at=now, updated_at=now)
    session.add(broadcast)
    session.flush()
    opted_out = consent.opted_out_phones(session, [m["phone"] for m in members], subscription)
    no_crm = {r["phone"]: r["missing"] for r in compose.rows_missing_variables(template, variables, members)}
    reasons = {**{p: "missing_variables: " + ", ".join(v) for p, v in no_crm.items()},
               **{p: "opted_out" for p in opted_out}}
    rows = [{"broadcast_id": broadcast.id, "phone": m["phone"], "contact_id": m.get("contact_id"),
             "variables": m.get("variables") or {}, "status": "skipped" if m["phone"] in reasons else "pending",
             "reason": reasons.get(m["phone"]), "created_at": now, "updated_at": now}
            for m in members]
    for start in range(0, len(rows), 1000):
        session.execute(insert(BroadcastRecipient), rows[start:start + 1000])
    return broadcast


def _locked(session: Session, broadcast_id: int) -> Broadcast:
    query = select(Broadcast).where(Broadcast.id == broadcast_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    broadcast = session.scalar(query.execution_options(populate_existing=True))
    if broadcast is None:
        raise BroadcastProblem(f"no broadcast with id {broadcast_id}", field="id", status=404)
    return broadcast


def _allowed(broadcast: Broadcast, action: str) -> None:
    if broadcast.status not in TRANSITIONS[action]:
        raise BroadcastProblem(f"a {broadcast.status} broadcast cannot {action}", field="status", status=409)


def start(session: Session, broadcast_id: int, *, now: datetime) -> Broadcast:
    """draft -> scheduled; the pump starts it at start_at (now when none)."""
    broadcast = _locked(session, broadcast_id)
    _allowed(broadcast, "schedule")
    if broadcast.start_at is not None and broadcast.start_at < now - timedelta(minutes=1):
        raise BroadcastProblem(f"start_at {broadcast.start_at.isoformat()} is in the past", field="start_at")
    broadcast.status, broadcast.updated_at = "scheduled", now
    return broadcast


def _withdraw_unsent(session: Session, broadcast: Broadcast, *, to_status: str, reason: str | None,
                     now: datetime) -> int:
    """Queued messages no sender has claimed go back (their recipients to `to_status`)."""
    queued = dict(session.execute(select(BroadcastRecipient.message_id, BroadcastRecipient.id).join(
        Message, Message.id == BroadcastRecipient.message_id).where(
        BroadcastRecipient.broadcast_id == broadcast.id, BroadcastRecipient.status == "queued",
        Message.status == "queued")).all())
    gone = unqueue(session, list(queued))
    ids = [queued[m] for m in gone]
    for chunk in range(0, len(ids), 500):
        session.execute(update(BroadcastRecipient).where(BroadcastRecipient.id.in_(ids[chunk:chunk + 500]))
                        .values(status=to_status, reason=reason, message_id=None, queued_at=None, updated_at=now)
                        .execution_options(synchronize_session=False))
    return len(ids)


def pause(session: Session, broadcast_id: int, cause: pauses.Cause, *, now: datetime) -> Broadcast:
    broadcast = _locked(session, broadcast_id)
    _allowed(broadcast, "pause")
    return pause_locked(session, broadcast, cause, now=now)


def pause_locked(session: Session, broadcast: Broadcast, cause: pauses.Cause, *, now: datetime) -> Broadcast:
    """Paused for `cause`: its English reason is what the API and the event say."""
    reason, by = cause.reason, cause.by
    broadcast.status, broadcast.paused_reason, broadcast.paused_by, broadcast.updated_at = "paused", reason, by, now
    broadcast.paused_cause = cause.detail
    _withdraw_unsent(session, broadcast, to_status="pending", reason=None, now=now)
    emit(session, "broadcast.paused", {
        "broadcast": {"id": broadcast.id, "name": broadcast.name, "status": broadcast.status,
                      "paused_reason": reason, "paused_by": by},
        "counts": counts(session, broadcast.id)}, now=now)
    return broadcast


def resume(session: Session, broadcast_id: int, *, now: datetime) -> Broadcast:
    broadcast = _locked(session, broadcast_id)
    _allowed(broadcast, "resume")
    broadcast.status = "sending" if broadcast.started_at is not None else "scheduled"
    broadcast.paused_reason = broadcast.paused_by = broadcast.paused_cause = None
    broadcast.updated_at = now
    return broadcast


def cancel(session: Session, broadcast_id: int, *, now: datetime) -> Broadcast:
    broadcast = _locked(session, broadcast_id)
    _allowed(broadcast, "cancel")
    _withdraw_unsent(session, broadcast, to_status="skipped", reason="cancelled", now=now)
    session.execute(update(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast.id,
                                                     BroadcastRecipient.status == "pending")
                    .values(status="skipped", reason="cancelled", updated_at=now)
                    .execution_options(synchronize_session=False))
    broadcast.status, broadcast.finished_at, broadcast.updated_at = "cancelled", now, now
    return broadcast


def retry_failed(session: Session, broadcast: Broadcast, *, now: datetime) -> Broadcast:
    """A new draft of the failures worth another try, with the original's composition."""
    members = retryable_failures(session, broadcast)
    if not members:
        raise BroadcastProblem("no failure of this broadcast is worth retrying", field="id", status=409)
    return create(session, name=f"{broadcast.name} (retry of failures)", channel_id=broadcast.channel_id,
                  audience_id=None, template_name=broadcast.template_name,
                  template_language=broadcast.template_language, variables=broadcast.variables,
                  header=broadcast.header, buttons=broadcast.buttons, timezone=broadcast.timezone,
                  allowed_days=broadcast.allowed_days, window_start=broadcast.window_start,
                  window_end=broadcast.window_end, failure_threshold=broadcast.failure_threshold,
                  failure_window=broadcast.failure_window, retry_of_id=broadcast.id, members=members, now=now)
