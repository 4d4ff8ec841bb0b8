"""Which published scenario an event starts (pure): the trigger against what happened.

A Happening is what the runtime read of an event: a customer's message (its text, the
id of the button or list row it pressed, whether it opened the conversation, the
conversation's lead source), a CRM stage entered, a conversation closed, a silence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.automations.answers import fold
from hub.routing import hours as team_hours


@dataclass(frozen=True)
class Happening:
    kind: str  # message, deal_stage, conversation_closed, no_reply, manual
    at: datetime
    channel_id: int | None = None
    text: str = ""
    reply_id: str | None = None
    started: bool = False  # this message opened the conversation
    lead_source: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    silent_hours: float = 0.0


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", fold(text))


def keyword_matches(trigger: dict[str, Any], text: str) -> str | None:
    """The keyword (or synonym) the text matches, or None. exact: the whole message;
    contains: as a word or phrase inside it; regex: searched, case-insensitively."""
    said = fold(text)
    if not said:
        return None
    candidates = [*(trigger.get("keywords") or []), *(trigger.get("synonyms") or [])]
    mode = trigger.get("match", "contains")
    for word in candidates:
        if mode == "regex":
            if re.search(word, text or "", re.IGNORECASE) or re.search(word, said, re.IGNORECASE):
                return word
        elif mode == "exact":
            if said.strip(" .!?,") == fold(word):
                return word
        else:
            wanted = _words(word)
            words = _words(said)
            n = len(wanted)
            if n and any(words[i:i + n] == wanted for i in range(len(words) - n + 1)):
                return word
    return None


def _source_matches(wanted: dict[str, Any], source: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "ad":
            if bool(source.get("referral")) != bool(value):
                return False
        elif key == "link":
            link = source.get("link") or source.get("tracked_link") or {}
            slug = link.get("slug") if isinstance(link, dict) else link
            if str(slug or source.get("link_slug") or "") != str(value):
                return False
        elif fold(str(source.get(key) or "")) != fold(str(value)):
            return False
    return True


def matches(trigger: dict[str, Any], happening: Happening, *, channel_ids: list[int] | None = None) -> dict | None:
    """What the trigger saw (put in the run as `trigger.*`) when it starts on this, or None."""
    if channel_ids and happening.channel_id not in channel_ids:
        return None
    kind = trigger["type"]
    h = happening
    if kind == "conversation_started":
        if h.kind != "message" or not h.started:
            return None
        if trigger.get("source") and not _source_matches(trigger["source"], h.lead_source):
            return None
        return {"type": kind, **{k: v for k, v in h.lead_source.items() if isinstance(v, (str, int, float))}}
    if kind == "keyword":
        found = keyword_matches(trigger, h.text) if h.kind == "message" else None
        return {"type": kind, "keyword": found, "text": h.text} if found else None
    if kind == "button_reply":
        if h.kind == "message" and h.reply_id and h.reply_id in (trigger.get("ids") or []):
            return {"type": kind, "reply_id": h.reply_id, "text": h.text}
        return None
    if kind == "deal_stage":
        if h.kind == "deal_stage" and h.stage is not None and fold(h.stage) == fold(trigger["stage"]):
            return {"type": kind, "stage": h.stage}
        return None
    if kind == "conversation_closed":
        return {"type": kind} if h.kind == "conversation_closed" else None
    if kind == "no_reply":
        return {"type": kind, "hours": trigger["hours"]} if h.kind == "no_reply" and h.silent_hours >= trigger["hours"] else None
    if kind == "off_hours":
        if h.kind != "message":
            return None
        if team_hours.is_open(trigger["hours"], trigger.get("holidays") or [], trigger.get("time_zone", "UTC"), h.at):
            return None
        opens = team_hours.next_opening(trigger["hours"], trigger.get("holidays") or [],
                                        trigger.get("time_zone", "UTC"), h.at)
        local = opens.astimezone(team_hours.zone(trigger.get("time_zone", "UTC"))) if opens else None
        return {"type": kind, "opens_at": local.strftime("%Y-%m-%d %H:%M") if local else "",
                "opens_time": local.strftime("%H:%M") if local else ""}
    if kind == "manual":
        return {"type": kind} if h.kind == "manual" else None
    return None


def delay_minutes(trigger: dict[str, Any]) -> int:
    return int(trigger.get("delay_minutes") or 0) if trigger["type"] == "deal_stage" else 0
