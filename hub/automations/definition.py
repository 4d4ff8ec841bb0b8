"""The scenario document's schema (marshmallow): its trigger and its steps by type.

load() raises DefinitionError with every problem as "path: message", the path naming
the step by position and id (e.g. "steps[2] (ask_budget).buttons"), so an editor or an
API client can point at the bad part.
"""
from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

STEP_ID = validate.Regexp(r"^[A-Za-z0-9_\-]{1,64}$", error="a step id is 1-64 letters, digits, _ or -")
TRIGGER_TYPES = ("conversation_started", "keyword", "button_reply", "deal_stage", "no_reply", "off_hours",
                 "conversation_closed", "manual")
VALIDATIONS = ("text", "phone", "email", "number", "date", "choice")
STORE_TARGET = validate.Regexp(r"^(contact|conversation|deal)\.[A-Za-z_][A-Za-z0-9_]{0,63}$",
                               error="store into contact.<field>, conversation.<field> or deal.<field>")
KEY = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", error="a name is letters, digits and _")


class DefinitionError(ValueError):
    """The document is not a valid scenario; `problems` are "path: message" lines."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _text(max_len: int, **kw: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_len), **kw)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class Choice(_Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    title = _text(24, required=True)
    description = fields.String(validate=validate.Length(max=72))
    synonyms = fields.List(_text(100), load_default=list, validate=validate.Length(max=20))


class Button(_Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=256))
    title = _text(20, required=True)


class Row(_Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    title = _text(24, required=True)
    description = fields.String(validate=validate.Length(max=72))


class TemplateRef(_Strict):
    name = _text(512, required=True)
    language = _text(16, required=True)
    variables = fields.List(fields.String(validate=validate.Length(max=1024)), load_default=list,
                            validate=validate.Length(max=20))


class Condition(_Strict):
    """One test: a value (`value_of` a variable) against `value`, a tag, or the time."""

    value_of = fields.String(validate=validate.Length(min=1, max=200))
    op = fields.String(load_default="eq", validate=validate.OneOf(
        ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "exists", "missing", "matches")))
    value = fields.Raw(allow_none=True)
    tag = _text(64)
    has = fields.Boolean(load_default=True)
    hours = fields.Dict(keys=fields.String(), values=fields.List(fields.List(fields.String())))
    time_zone = fields.String(load_default="UTC")
    holidays = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _one_kind(self, data: dict[str, Any], **_: Any) -> None:
        kinds = [k for k in ("value_of", "tag", "hours") if k in data]
        if len(kinds) != 1:
            raise ValidationError("a condition names exactly one of value_of, tag or hours", "_schema")


class Case(_Strict):
    when = fields.List(fields.Nested(Condition), required=True, validate=validate.Length(min=1, max=20))
    next = fields.String(required=True, validate=STEP_ID)


class _Step(_Strict):
    id = fields.String(required=True, validate=STEP_ID)
    type = fields.String(required=True)
    next = fields.String(validate=STEP_ID, allow_none=True)


class TextStep(_Step):
    text = _text(4096, required=True)
    # Sent instead when the 24-hour window is closed (a free-form text cannot be).
    template = fields.Nested(TemplateRef)


class MediaStep(_Step):
    media_type = fields.String(required=True, validate=validate.OneOf(("image", "video", "audio", "document")))
    link = fields.Url(required=True, schemes={"https", "http"})
    caption = fields.String(validate=validate.Length(max=1024))
    template = fields.Nested(TemplateRef)


class ButtonsStep(_Step):
    text = _text(1024, required=True)
    buttons = fields.List(fields.Nested(Button), required=True,
                          validate=validate.Length(min=1, max=3, error="1 to 3 buttons"))
    template = fields.Nested(TemplateRef)


class ListStep(_Step):
    text = _text(4096, required=True)
    button = _text(20, load_default="Choose")
    rows = fields.List(fields.Nested(Row), required=True,
                       validate=validate.Length(min=1, max=10, error="1 to 10 rows"))
    template = fields.Nested(TemplateRef)


class TemplateStep(_Step):
    template = fields.Nested(TemplateRef, required=True)


class AskStep(_Step):
    text = _text(1024, required=True)
    validate_as = fields.String(data_key="validate", load_default="text", validate=validate.OneOf(VALIDATIONS))
    choices = fields.List(fields.Nested(Choice), validate=validate.Length(min=1, max=10, error="1 to 10 choices"))
    save_as = fields.String(validate=KEY)
    store = fields.String(validate=STORE_TARGET)
    min = fields.Float()
    max = fields.Float()
    retries = fields.Integer(load_default=2, validate=validate.Range(0, 5))
    retry_text = fields.String(validate=validate.Length(min=1, max=1024))
    on_fail = fields.String(validate=STEP_ID)
    remind_after_seconds = fields.Integer(validate=validate.Range(60, 30 * 86400))
    remind_text = fields.String(validate=validate.Length(min=1, max=1024))
    give_up_after_seconds = fields.Integer(validate=validate.Range(60, 30 * 86400))
    on_timeout = fields.String(validate=STEP_ID)
    # Asked with this template when the window is closed (e.g. a poll after the chat closed).
    template = fields.Nested(TemplateRef)

    @validates_schema
    def _choices(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("validate_as") == "choice" and not data.get("choices"):
            raise ValidationError("validate: choice needs choices", "choices")
        if data.get("remind_text") and not data.get("remind_after_seconds"):
            raise ValidationError("remind_text needs remind_after_seconds", "remind_after_seconds")


class BranchStep(_Step):
    cases = fields.List(fields.Nested(Case), required=True, validate=validate.Length(min=1, max=50))
    otherwise = fields.String(data_key="else", validate=STEP_ID)


class WaitStep(_Step):
    seconds = fields.Integer(required=True, validate=validate.Range(1, 30 * 86400))
    # A reply while waiting: stop the run, resume at once (at reply_next or next), or ignore it.
    on_reply = fields.String(load_default="resume", validate=validate.OneOf(("stop", "resume", "ignore")))
    reply_next = fields.String(validate=STEP_ID)


class SetStep(_Step):
    add_tags = fields.List(_text(64), load_default=list, validate=validate.Length(max=50))
    remove_tags = fields.List(_text(64), load_default=list, validate=validate.Length(max=50))
    fields_ = fields.Dict(data_key="fields", keys=fields.String(validate=STORE_TARGET),
                          values=fields.String(validate=validate.Length(max=1024)), load_default=dict)


class DealStageStep(_Step):
    stage = _text(200, required=True)
    pipeline = fields.String(validate=validate.Length(min=1, max=200))


class HandoffStep(_Step):
    team_id = fields.Integer(validate=validate.Range(min=1))
    user_id = fields.Integer(validate=validate.Range(min=1))
    note = fields.String(validate=validate.Length(max=1024))

    @validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("team_id") and data.get("user_id"):
            raise ValidationError("hand off to a team or an operator, not both", "team_id")


class HttpStep(_Step):
    url = fields.Url(required=True, schemes={"https", "http"})
    method = fields.String(load_default="POST", validate=validate.OneOf(("GET", "POST")))
    body = fields.Dict(keys=fields.String(validate=validate.Length(max=64)),
                       values=fields.String(validate=validate.Length(max=1024)), load_default=dict)
    # The name of an environment variable holding the signing secret: never in the document.
    secret_env = fields.String(validate=validate.Regexp(r"^[A-Z_][A-Z0-9_]{0,63}$",
                                                        error="an environment variable name"))
    timeout_seconds = fields.Float(load_default=5.0, validate=validate.Range(0.5, 10))
    save_as = fields.String(required=True, validate=KEY)
    on_error = fields.String(validate=STEP_ID)


class CloseStep(_Step):
    text = fields.String(validate=validate.Length(min=1, max=4096))


STEP_SCHEMAS: dict[str, type[_Step]] = {
    "text": TextStep, "media": MediaStep, "buttons": ButtonsStep, "list": ListStep, "template": TemplateStep,
    "ask": AskStep, "branch": BranchStep, "wait": WaitStep, "set": SetStep, "deal_stage": DealStageStep,
    "handoff": HandoffStep, "http": HttpStep, "close": CloseStep,
}
TERMINAL = frozenset({"handoff", "close"})
BLOCKING = frozenset({"ask", "wait"})  # a cycle through one of these waits for the customer or the clock


class Trigger(_Strict):
    type = fields.String(required=True, validate=validate.OneOf(TRIGGER_TYPES))
    # keyword
    match = fields.String(load_default="contains", validate=validate.OneOf(("exact", "contains", "regex")))
    keywords = fields.List(_text(200), validate=validate.Length(max=100))
    synonyms = fields.List(_text(200), load_default=list, validate=validate.Length(max=100))
    # button_reply
    ids = fields.List(_text(256), validate=validate.Length(max=100))
    # conversation_started: only from a tracked link / ad / UTM campaign
    source = fields.Dict(keys=fields.String(validate=validate.OneOf(
        ("kind", "link", "ad", "utm_source", "utm_medium", "utm_campaign"))), values=fields.Raw())
    # deal_stage
    stage = _text(200)
    delay_minutes = fields.Integer(load_default=0, validate=validate.Range(0, 60 * 24 * 90))
    # no_reply
    hours = fields.Raw()  # no_reply: a number of hours; off_hours: the weekly hours
    time_zone = fields.String(load_default="UTC")
    holidays = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _needs(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("type")
        if kind == "keyword":
            if not data.get("keywords"):
                raise ValidationError("a keyword trigger needs keywords", "keywords")
            if data.get("match") == "regex":
                for i, pattern in enumerate(data["keywords"]):
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise ValidationError(f"keywords[{i}] is not a regular expression: {exc}", "keywords")
        if kind == "button_reply" and not data.get("ids"):
            raise ValidationError("a button_reply trigger needs ids", "ids")
        if kind == "deal_stage" and not data.get("stage"):
            raise ValidationError("a deal_stage trigger needs stage", "stage")
        if kind == "no_reply":
            hours = data.get("hours")
            if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not 1 <= hours <= 720:
                raise ValidationError("no_reply needs hours: a number from 1 to 720", "hours")
        if kind == "off_hours":
            from hub.routing.hours import HoursError, spans, zone

            try:
                spans(data.get("hours") if data.get("hours") is not None else {})
                zone(data.get("time_zone", "UTC"))
            except HoursError as exc:
                raise ValidationError(str(exc), "hours") from None
            if not data.get("hours"):
                raise ValidationError("off_hours needs the working hours", "hours")


class Document(Schema):
    class Meta:
        unknown = EXCLUDE  # steps are checked one by one below, with their own schema

    name = _text(200, required=True)
    description = fields.String(validate=validate.Length(max=2000), load_default="")
    trigger = fields.Nested(Trigger, required=True)
    channel_ids = fields.List(fields.Integer(validate=validate.Range(min=1)), load_default=list)
    # The same scenario does not start again in a conversation within this many minutes.
    cooldown_minutes = fields.Integer(load_default=0, validate=validate.Range(0, 60 * 24 * 90))
    start = fields.String(validate=STEP_ID)
    steps = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=200))


def _flatten(messages: Any, path: str) -> list[str]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            if key == "_schema":
                out += _flatten(value, path)
            else:
                sub = f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
                out += _flatten(value, f"{path}{sub}")
        return out
    if isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        return [f"{path or 'document'}: {m}" for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, path)]
    return [f"{path or 'document'}: {messages}"]


def step_path(index: int, step: Any) -> str:
    sid = step.get("id") if isinstance(step, dict) else None
    return f"steps[{index}]" + (f" ({sid})" if isinstance(sid, str) and sid else "")


def load(document: Any) -> dict[str, Any]:
    """The document checked and with defaults filled in; raises DefinitionError."""
    if not isinstance(document, dict):
        raise DefinitionError(["document: expected a JSON object"])
    problems: list[str] = []
    try:
        top = Document().load(document)
    except ValidationError as exc:
        problems += _flatten(exc.messages, "")
        top = None
    steps = []
    for i, raw in enumerate(document.get("steps") or [] if isinstance(document.get("steps"), list) else []):
        path = step_path(i, raw)
        if not isinstance(raw, dict):
            problems.append(f"{path}: expected an object")
            continue
        schema = STEP_SCHEMAS.get(raw.get("type"))
        if schema is None:
            problems.append(f"{path}.type: unknown step type {raw.get('type')!r} "
                            f"(one of {', '.join(sorted(STEP_SCHEMAS))})")
            continue
        try:
            steps.append(schema().load(raw))
        except ValidationError as exc:
            problems += _flatten(exc.messages, path)
    if problems:
        raise DefinitionError(problems)
    assert top is not None
    top["steps"] = steps
    return top
