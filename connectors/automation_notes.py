"""automation.step on a CRM deal, shared by the three CRM connectors: a scenario's answers
stored into the deal (action deal_fields) become one timeline entry listing them, and a
stage move (action deal_stage) names the stage to move to.

The answers ride the timeline's own batching and exactly-once bookkeeping (links by
message id) as a message.sent of that text, the customer's words (direction "in"). The
id is negative, like broadcast notes' ids, from the event id so that a retry finds the
same note; automation ids sit above 2**52, where no broadcast note's id reaches.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Mapping

from connectors.base import HubEvent

ID_BASE = 2 ** 52


def answers_text(data: Mapping[str, Any]) -> str:
    """"Answers to «scenario»:" then one "name: value" line per field, sorted."""
    scenario = (data.get("scenario") or {}).get("name") or "scenario"
    lines = [f"{name}: {value}" for name, value in sorted((data.get("fields") or {}).items())]
    return f"Answers to «{scenario}»:\n" + "\n".join(lines)


def note_id(event_id: str) -> int:
    return -(ID_BASE + int(hashlib.sha256(str(event_id).encode()).hexdigest()[:12], 16))


def is_answers(event: HubEvent) -> bool:
    return event.type == "automation.step" and (event.data or {}).get("action") == "deal_fields" \
        and bool((event.data or {}).get("fields"))


def as_timeline_message(event: HubEvent) -> HubEvent:
    data = event.data
    message = {"id": note_id(event.id), "wa_message_id": None, "direction": "in", "type": "text",
               "text": answers_text(data), "timestamp": event.occurred_at.isoformat(), "status": "received",
               "media": None, "reply_to": None, "template": None, "author": None}
    return replace(event, type="message.sent", data={"conversation": data.get("conversation"),
                                                     "contact": data.get("contact"), "message": message})


def with_automation_notes(batch: list[HubEvent]) -> list[HubEvent]:
    """The batch with each scenario's stored answers as a timeline message."""
    return [as_timeline_message(e) if is_answers(e) else e for e in batch]


def stage_move(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """(stage, pipeline) of a deal_stage step, as the scenario wrote them ("" for no
    pipeline); None for any other step."""
    if data.get("action") != "deal_stage" or not str(data.get("stage") or "").strip():
        return None
    return str(data["stage"]).strip(), str(data.get("pipeline") or "").strip()
