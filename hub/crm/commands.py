"""Carrying out what a CRM asks of the hub (connectors.base commands).

Each command is checked like any other request: a template must exist and fit, free
text needs an open window, an unknown conversation is refused. A refusal does not fail
the others; the caller gets one result per command.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import AssignConversation, CloseConversation, Command, ReportDealStage, SendTemplate, SendText
from hub.channels.base import Outgoing, SendRefused, TemplateInput
from hub.channels.sending import queue
from hub.conversations.actions import assign, close
from hub.crm.deal_outcomes import report_stage
from hub.models import Channel, Conversation, CrmLink, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    command: str
    ok: bool
    detail: str
    message_id: int | None = None
    templates: list[dict[str, Any]] | None = None  # what could be sent instead (window closed)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command, "ok": self.ok, "detail": self.detail,
                               "message_id": self.message_id}
        if self.templates is not None:
            out["templates"] = self.templates
        return out


def _default_channel(session: Session) -> int | None:
    return session.scalar(select(Channel.id).order_by(Channel.id))


def _first_time(session: Session, connector_id: int | None, key: str | None, now: datetime) -> bool:
    """Record an idempotency key (as a link of the connector); False if it was seen."""
    if not key or connector_id is None:
        return True
    exists = session.scalar(select(CrmLink.id).where(
        CrmLink.connector_id == connector_id, CrmLink.entity_type == "command", CrmLink.entity_id == key[:64]))
    if exists:
        return False
    session.add(CrmLink(connector_id=connector_id, entity_type="command", entity_id=key[:64], crm_type="command",
                        crm_id="done", created_at=now))
    return True


def _send_template(session: Session, c: SendTemplate, now: datetime, connector_id: int | None) -> Result:
    if not _first_time(session, connector_id, c.idempotency_key, now):
        return Result("send_template", True, f"already carried out ({c.idempotency_key})")
    variables = c.variables
    body: list[Any] | dict[str, Any] | None = list(variables) if isinstance(variables, (list, tuple)) else \
        dict(variables) if variables else None
    message = queue(session, Outgoing(
        kind="template", template=TemplateInput(c.template, c.language, body or None),
        conversation_id=c.conversation_id,
        channel_id=None if c.conversation_id else (c.channel_id or _default_channel(session)),
        to=None if c.conversation_id else c.phone), now=now)
    if c.reason:
        message.payload = {**(message.payload or {}), "reason": c.reason}
    return Result("send_template", True, f"queued template {c.template}", message.id)


def _one(session: Session, command: Command, now: datetime, connector_id: int | None) -> Result:
    if isinstance(command, SendTemplate):
        return _send_template(session, command, now, connector_id)
    if isinstance(command, SendText):
        if not _first_time(session, connector_id, command.idempotency_key, now):
            return Result("send_text", True, f"already carried out ({command.idempotency_key})")
        message = queue(session, Outgoing(kind="text", content={"body": command.text},
                                          conversation_id=command.conversation_id, by_person=bool(command.author)),
                        now=now)
        if command.author:
            message.payload = {**(message.payload or {}), "crm_author": command.author}
        if command.crm_message_id and connector_id is not None:
            session.flush()
            session.add(CrmLink(connector_id=connector_id, entity_type="crm_message", entity_id=str(message.id),
                                crm_type="message", crm_id=command.crm_message_id[:64], created_at=now))
        return Result("send_text", True, "queued", message.id)
    if isinstance(command, ReportDealStage):
        if not _first_time(session, connector_id, command.idempotency_key, now):
            return Result("report_deal_stage", True, f"already carried out ({command.idempotency_key})")
        return Result("report_deal_stage", True, report_stage(session, command, now=now, connector_id=connector_id))
    conversation = session.get(Conversation, command.conversation_id)
    if conversation is None:
        return Result(type(command).__name__, False, f"no conversation {command.conversation_id}")
    if isinstance(command, AssignConversation):
        user_id = None
        if command.assignee_email:
            user_id = session.scalar(select(User.id).where(User.email == command.assignee_email.lower()))
            if user_id is None:
                return Result("assign", False, f"no hub user {command.assignee_email}")
        assign(session, conversation, user_id, now=now)
        return Result("assign", True, "assigned")
    if isinstance(command, CloseConversation):
        close(session, conversation, reason=command.reason or "closed from the CRM", now=now)
        return Result("close", True, "closed")
    return Result(type(command).__name__, False, "unknown command")


def execute(session: Session, commands: list[Command], *, now: datetime,
            connector_id: int | None = None) -> list[Result]:
    results = []
    for command in commands:
        try:
            with session.begin_nested():
                results.append(_one(session, command, now, connector_id))
        except SendRefused as exc:
            templates = exc.details.get("templates")
            results.append(Result(type(command).__name__, False, f"{exc.code}: {exc}",
                                  templates=list(templates) if templates is not None else None))
        except LookupError as exc:
            results.append(Result(type(command).__name__, False, str(exc)))
    for r in results:
        if not r.ok:
            log.warning("CRM command refused: %s (%s)", r.command, r.detail)
    return results
