"""Applying what the engine asked for, in the caller's transaction: messages queued
through the channel contract (marked automated, no author: they answer no SLA clock
and count in no response time), answers and tags stored, the deal moved through an
automation.step event the CRM connectors map, hand-off to routing, closing."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.events import payloads
from hub.automations import engine
from hub.channels.base import Outgoing, SendRefused, TemplateInput
from hub.events.outbox import emit
from hub.conversations import tags_and_fields
from hub.models import Contact, Conversation, Run, Scenario, Team

log = logging.getLogger(__name__)


def facts(session: Session, conversation: Conversation, *, now: datetime, config: Any) -> engine.Facts:
    from hub.channels import registry
    from hub.models import Channel

    contact = session.get(Contact, conversation.contact_id)
    kind = registry.of(session.get(Channel, conversation.channel_id), config)
    window = kind.window(conversation, now)
    return engine.Facts(
        contact={"name": contact.name if contact else "", "phone": contact.phone if contact else None,
                 **tags_and_fields.fields_of(session, conversation.contact_id)},
        # A closed conversation is reopened by the next send, and a new one has no window yet.
        tags=tuple(tags_and_fields.tags_of(session, conversation.contact_id)),
        window_open=conversation.status == "open" and (window.open or not window.applies))


def _send(session: Session, run: Run, action: engine.Send, step: str | None, *, now: datetime, config: Any) -> dict:
    from hub.channels.sending import queue

    template = None
    if action.template:
        template = TemplateInput(name=action.template["name"], language=action.template["language"],
                                 body=action.template.get("body") or None)
    outgoing = Outgoing(kind=action.kind, content=action.content, template=template,
                        conversation_id=run.conversation_id)
    try:
        with session.begin_nested():
            message = queue(session, outgoing, now=now, config=config)
    except SendRefused as exc:
        return {"refused": getattr(exc, "code", "invalid"), "reason": str(exc)[:300]}
    message.payload = {**(message.payload or {}), "automation": {"run_id": run.id, "scenario_id": run.scenario_id,
                                                                  "step": step}}
    if message.conversation_id != run.conversation_id:  # a closed conversation reopened by the send
        run.conversation_id = message.conversation_id
    return {"message_id": message.id}


def _deal_event(session: Session, run: Run, conversation: Conversation, step: str | None, action: str,
                detail: dict[str, Any], *, now: datetime) -> None:
    scenario = session.get(Scenario, run.scenario_id)
    emit(session, "automation.step", {
        "conversation": payloads.conversation(session, conversation),
        "contact": payloads.contact(session.get(Contact, conversation.contact_id)),
        "scenario": {"id": run.scenario_id, "name": scenario.name if scenario else ""},
        "run_id": run.id, "step": step, "action": action, **detail,
    }, now=now, ordering_key=payloads.ordering_key(conversation))


def _handoff(session: Session, conversation: Conversation, action: engine.Handoff, *, now: datetime) -> dict:
    from hub.routing import engine as routing

    if conversation.status != "open":
        return {"routed": "closed"}
    if action.user_id:
        if routing.try_assign(session, conversation, action.user_id, now=now):
            return {"routed": "assigned", "user_id": action.user_id}
        routing.enqueue(session, conversation, user_id=action.user_id, reason="waiting_for_operator", now=now)
        return {"routed": "queued", "user_id": action.user_id}
    if action.team_id:
        team = session.get(Team, action.team_id)
        if team is None:
            return {"routed": "none", "reason": f"no team {action.team_id}"}
        routed = routing.route_to_team(session, conversation, team, now=now)
    else:
        routed = routing.route(session, conversation, now=now)
    return {"routed": routed.outcome, "user_id": routed.user_id, "team_id": routed.team_id, "reason": routed.reason}


def apply(session: Session, run: Run, outcome: engine.Outcome, *, now: datetime, config: Any) -> list[dict]:
    """Do the outcome's actions (except Http, which the runtime does outside the
    transaction); returns what each did, for the step log."""
    conversation = session.get(Conversation, run.conversation_id)
    step = outcome.state.get("step")
    done: list[dict[str, Any]] = []
    deal_fields: dict[str, Any] = {}
    for action in outcome.actions:
        if isinstance(action, engine.Send):
            done.append({"kind": "queued", **_send(session, run, action, step, now=now, config=config)})
        elif isinstance(action, engine.Store):
            where, name = action.target.split(".", 1)
            if where == "contact":  # the profile, not the contact row: WhatsApp refreshes its name
                tags_and_fields.change_fields(session, conversation.contact_id, {name: action.value}, now=now)
            elif where == "deal":
                deal_fields[name] = action.value
        elif isinstance(action, engine.Tags):
            tags_and_fields.change_tags(session, conversation.contact_id, add=action.add, remove=action.remove,
                                        now=now)
        elif isinstance(action, engine.DealStage):
            if deal_fields:
                _deal_event(session, run, conversation, step, "deal_fields", {"fields": deal_fields}, now=now)
                deal_fields = {}
            _deal_event(session, run, conversation, step, "deal_stage",
                        {"stage": action.stage, "pipeline": action.pipeline}, now=now)
        elif isinstance(action, engine.Handoff):
            if deal_fields:
                _deal_event(session, run, conversation, step, "deal_fields", {"fields": deal_fields}, now=now)
                deal_fields = {}
            done.append({"kind": "handoff", **_handoff(session, conversation, action, now=now)})
        elif isinstance(action, engine.Close):
            from hub.conversations.actions import close

            close(session, conversation, reason="automation", now=now)
    if deal_fields:
        _deal_event(session, run, conversation, step, "deal_fields", {"fields": deal_fields}, now=now)
    return done
