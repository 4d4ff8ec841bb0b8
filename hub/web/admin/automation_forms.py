"""The scenario editor's forms: one form per step type and one for the trigger, read
from and written back into the draft document the JSON editor edits.

Each form manages a fixed set of a step's keys; keys it does not manage (and a branch
case's working-hours conditions, edited as JSON) are kept as they were. Values that do
not even convert (a number that is not one) are problems named like the schema's,
"steps[2] (budget).retries: …", so the page shows one kind of error."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from flask_babel import lazy_gettext as _l

from hub.automations import checks
from hub.automations.definition import STEP_SCHEMAS, VALIDATIONS, DefinitionError, step_path

BLANK_ROWS = 2
OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "exists", "missing", "matches")


@dataclass(frozen=True)
class Column:
    name: str
    label: Any
    kind: str = "str"  # str, step (a step id), select
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    name: str
    label: Any
    kind: str = "str"  # str, text, int, float, select, step, lines, pairs, json, table, template
    choices: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    help: Any = ""


@dataclass
class Shown:
    """A field as the page shows it: its spec, its value(s) and its problems."""
    spec: Field
    value: Any = ""
    errors: list[str] = field(default_factory=list)


TEMPLATE = Field("template", _l("Template when the 24-hour window is closed"), "template")
NEXT = Field("next", _l("Then go to"), "step")
STEP_FIELDS: dict[str, tuple[Field, ...]] = {
    "text": (Field("text", _l("Text"), "text"), TEMPLATE, NEXT),
    "media": (Field("media_type", _l("Media type"), "select", ("image", "video", "audio", "document")),
              Field("link", _l("Link (https://…)")), Field("caption", _l("Caption"), "text"), TEMPLATE, NEXT),
    "buttons": (Field("text", _l("Text"), "text"),
                Field("buttons", _l("Buttons (up to 3)"), "table",
                      columns=(Column("id", _l("Id")), Column("title", _l("Title (up to 20)")))),
                TEMPLATE, NEXT),
    "list": (Field("text", _l("Text"), "text"), Field("button", _l("Button label")),
             Field("rows", _l("Rows (up to 10)"), "table",
                   columns=(Column("id", _l("Id")), Column("title", _l("Title (up to 24)")),
                            Column("description", _l("Description")))),
             TEMPLATE, NEXT),
    "template": (Field("template", _l("Template"), "template"), NEXT),
    "ask": (Field("text", _l("Question"), "text"),
            Field("validate", _l("Answer must be"), "select", VALIDATIONS),
            Field("choices", _l("Choices (for a choice answer)"), "table",
                  columns=(Column("id", _l("Id")), Column("title", _l("Title (up to 24)")),
                           Column("synonyms", _l("Synonyms, comma separated")))),
            Field("min", _l("Smallest number"), "float"), Field("max", _l("Largest number"), "float"),
            Field("save_as", _l("Save the answer as answers.<name>")),
            Field("store", _l("Store into (contact.<field>, conversation.<field> or deal.<field>)")),
            Field("retries", _l("Re-asks on a bad answer"), "int"),
            Field("retry_text", _l("Re-ask text"), "text"),
            Field("on_fail", _l("After the last bad answer go to"), "step"),
            Field("remind_after_seconds", _l("Remind after (seconds)"), "int"),
            Field("remind_text", _l("Reminder text"), "text"),
            Field("give_up_after_seconds", _l("Give up after (seconds)"), "int"),
            Field("on_timeout", _l("When no answer comes go to"), "step"),
            TEMPLATE, NEXT),
    "branch": (Field("cases", _l("Cases"), "table",
                     columns=(Column("case", _l("Case")), Column("next", _l("Go to"), "step"),
                              Column("value_of", _l("Value of (e.g. answers.budget)")),
                              Column("op", _l("Test"), "select", OPS), Column("value", _l("Value")),
                              Column("tag", _l("or tag")), Column("has", _l("has the tag"), "select", ("yes", "no"))),
                     help=_l("Rows with the same case number must all hold. Conditions on working hours are "
                             "edited in the JSON editor and kept here.")),
               Field("else", _l("Otherwise go to"), "step")),
    "wait": (Field("seconds", _l("Wait (seconds)"), "int"),
             Field("on_reply", _l("A reply while waiting"), "select", ("resume", "stop", "ignore")),
             Field("reply_next", _l("On a reply go to"), "step"), NEXT),
    "set": (Field("add_tags", _l("Add tags"), "lines"), Field("remove_tags", _l("Remove tags"), "lines"),
            Field("fields", _l("Fields (contact.city = {{answers.city}})"), "pairs"), NEXT),
    "deal_stage": (Field("stage", _l("Stage (id or name)")), Field("pipeline", _l("Pipeline (id or name)")), NEXT),
    "handoff": (Field("team_id", _l("Team id"), "int"), Field("user_id", _l("Operator id"), "int"),
                Field("note", _l("Note for the operator"), "text")),
    "http": (Field("url", _l("URL")), Field("method", _l("Method"), "select", ("POST", "GET")),
             Field("body", _l("Body (key = {{answers.name}})"), "pairs"),
             Field("secret_env", _l("Signing secret: environment variable name")),
             Field("timeout_seconds", _l("Timeout (seconds)"), "float"),
             Field("save_as", _l("Save the answer as http.<name>")),
             Field("on_error", _l("On an error go to"), "step"), NEXT),
    "close": (Field("text", _l("Goodbye text"), "text"),),
}
ID_FIELD = Field("id", _l("Step id"))
TRIGGER_FIELDS: dict[str, tuple[Field, ...]] = {
    "conversation_started": (Field("source", _l("Only from (utm_campaign = spring, link = <slug>, ad = true)"),
                                   "pairs"),),
    "keyword": (Field("match", _l("Match"), "select", ("contains", "exact", "regex")),
                Field("keywords", _l("Keywords"), "lines"), Field("synonyms", _l("Synonyms"), "lines")),
    "button_reply": (Field("ids", _l("Button or row ids"), "lines"),),
    "deal_stage": (Field("stage", _l("Stage (id or name)")), Field("delay_minutes", _l("Delay (minutes)"), "int")),
    "no_reply": (Field("hours", _l("No reply for (hours)"), "float"),),
    "off_hours": (Field("hours", _l("Working hours (JSON: {\"mon\": [[\"09:00\", \"18:00\"]]})"), "json"),
                  Field("time_zone", _l("Time zone")), Field("holidays", _l("Holidays (2026-01-01)"), "lines")),
    "conversation_closed": (),
    "manual": (),
}
TYPES = tuple(STEP_SCHEMAS)


def revision(document: Any) -> str:
    """A short fingerprint of the draft: a form made from an older draft is refused
    instead of overwriting what was saved since."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# -- document -> form -------------------------------------------------------------------
def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rows_of(spec: Field, data: Mapping[str, Any]) -> list[list[str]]:
    if spec.name == "cases":
        rows = []
        for c, case in enumerate(data.get("cases") or [], start=1):
            conditions = [w for w in (case.get("when") or []) if isinstance(w, dict) and "hours" not in w] or [{}]
            for w, cond in enumerate(conditions):
                if "tag" in cond:
                    rows.append([str(c), case.get("next", "") if w == 0 else "", "", "", "", cond["tag"],
                                 "yes" if cond.get("has", True) else "no"])
                else:
                    rows.append([str(c), case.get("next", "") if w == 0 else "", cond.get("value_of", ""),
                                 cond.get("op", "eq"), _text_of(cond.get("value")), "", ""])
        return rows
    rows = []
    for item in data.get(spec.name) or []:
        if isinstance(item, dict):
            rows.append([", ".join(item.get(col.name) or []) if col.name == "synonyms" else
                         _text_of(item.get(col.name)) for col in spec.columns])
    return rows


def shown_value(spec: Field, data: Mapping[str, Any]) -> Any:
    if spec.kind == "table":
        return _rows_of(spec, data)
    if spec.kind == "template":
        ref = data.get("template") if isinstance(data.get("template"), dict) else {}
        return {"name": ref.get("name", ""), "language": ref.get("language", ""),
                "variables": "\n".join(map(_text_of, ref.get("variables") or []))}
    value = data.get(spec.name)
    if spec.kind == "lines":
        return "\n".join(map(_text_of, value or []))
    if spec.kind == "pairs":
        return "\n".join(f"{k} = {_text_of(v)}" for k, v in (value or {}).items())
    if spec.kind == "json":
        return json.dumps(value, ensure_ascii=False) if value is not None else ""
    return _text_of(value)


def shown(specs: tuple[Field, ...], data: Mapping[str, Any]) -> list[Shown]:
    return [Shown(spec, shown_value(spec, data)) for spec in specs]


# -- form -> document -------------------------------------------------------------------
class FormProblems(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _loose(text: str) -> Any:
    """A table or pair value: JSON when it reads as JSON (numbers, true), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _table(spec: Field, form: Mapping[str, str]) -> list[list[str]]:
    raw = form.get(f"{spec.name}-rows", "0")
    count = min(int(raw), 200) if raw.isdigit() else 0
    rows = []
    for r in range(count):
        row = [form.get(f"{spec.name}-{r}-{c}", "").strip() for c in range(len(spec.columns))]
        if any(cell for cell, col in zip(row, spec.columns) if col.kind != "select"):
            rows.append(row)
    return rows


def _cases(rows: list[list[str]], old: list[Any], path: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for case, nxt, value_of, op, value, tag, has in rows:
        key = case or f"new-{len(groups)}"
        group = groups.setdefault(key, {"when": []})
        if nxt and "next" not in group:
            group["next"] = nxt
        if tag:
            group["when"].append({"tag": tag, "has": has != "no"})
        elif value_of:
            cond: dict[str, Any] = {"value_of": value_of, "op": op or "eq"}
            if op not in ("exists", "missing"):
                parsed = _loose(value) if value else ""
                cond["value"] = [v.strip() for v in value.split(",")] if op == "in" and not isinstance(
                    parsed, list) else parsed
            group["when"].append(cond)
    cases = list(groups.values())
    for i, case in enumerate(cases):  # working-hours conditions stay with their case
        if i < len(old) and isinstance(old[i], dict):
            case["when"] += [w for w in old[i].get("when") or [] if isinstance(w, dict) and "hours" in w]
    return cases


def _value(spec: Field, form: Mapping[str, str], old: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) of one field; raises FormProblems for a value that cannot convert."""
    if spec.kind == "table":
        rows = _table(spec, form)
        if spec.name == "cases":
            return True, _cases(rows, list(old.get("cases") or []), path)
        items = []
        for row in rows:
            item: dict[str, Any] = {}
            for col, cell in zip(spec.columns, row):
                if col.name == "synonyms":
                    item["synonyms"] = [s.strip() for s in cell.split(",") if s.strip()]
                elif cell:
                    item[col.name] = cell
            items.append(item)
        return bool(items), items
    if spec.kind == "template":
        name, language = form.get("template-name", "").strip(), form.get("template-language", "").strip()
        variables = [v.strip() for v in form.get("template-variables", "").splitlines() if v.strip()]
        if not (name or language or variables):
            return False, None
        return True, {"name": name, "language": language, "variables": variables}
    text = form.get(spec.name, "")
    text = text if spec.kind in ("text", "lines", "pairs") else text.strip()
    if spec.kind in ("lines",):
        items = [line.strip() for line in text.splitlines() if line.strip()]
        return bool(items), items
    if spec.kind == "pairs":
        pairs: dict[str, Any] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise FormProblems([f"{path}.{spec.name}: line {n} is not 'key = value'"])
            pairs[key.strip()] = value.strip() if spec.name in ("fields", "body") else _loose(value.strip())
        return bool(pairs), pairs
    if not text.strip():
        return False, None
    if spec.kind == "int":
        if not re.fullmatch(r"-?\d{1,12}", text):
            raise FormProblems([f"{path}.{spec.name}: {text!r} is not a whole number"])
        return True, int(text)
    if spec.kind == "float":
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise FormProblems([f"{path}.{spec.name}: {text!r} is not a number"]) from None
        return True, int(number) if number.is_integer() else number
    if spec.kind == "json":
        try:
            return True, json.loads(text)
        except ValueError as exc:
            raise FormProblems([f"{path}.{spec.name}: not JSON: {exc}"]) from None
    return True, text.strip()


def build(specs: tuple[Field, ...], form: Mapping[str, str], old: Mapping[str, Any], path: str,
          keep_unmanaged: bool = True) -> dict[str, Any]:
    """The object the form describes: the old one's unmanaged keys, then each field's
    value (an empty field leaves its key out). Raises FormProblems naming every field
    that does not convert."""
    managed = {s.name for s in specs}
    out = {k: v for k, v in old.items() if k not in managed} if keep_unmanaged else {}
    problems: list[str] = []
    for spec in specs:
        try:
            present, value = _value(spec, form, old, path)
        except FormProblems as exc:
            problems += exc.problems
            continue
        if present:
            out[spec.name] = value
    if problems:
        raise FormProblems(problems)
    return out


def build_step(kind: str, form: Mapping[str, str], old: Mapping[str, Any], index: int) -> dict[str, Any]:
    sid = form.get("id", "").strip()
    path = step_path(index, {"id": sid})
    managed = {s.name for specs in STEP_FIELDS.values() for s in specs} | {"id", "type"}
    # A step changing type drops what only its old type had.
    kept = old if old.get("type") == kind else {k: v for k, v in old.items() if k not in managed}
    body = build(STEP_FIELDS[kind], form, kept, path)
    return {"id": sid, "type": kind, **{k: v for k, v in body.items() if k not in ("id", "type")}}


def build_trigger(kind: str, form: Mapping[str, str]) -> dict[str, Any]:
    return {"type": kind, **build(TRIGGER_FIELDS[kind], form, {}, "trigger", keep_unmanaged=False)}


# -- checks -----------------------------------------------------------------------------
def _about(path: str, problem: str) -> bool:
    return problem.startswith(path) and problem[len(path):len(path) + 1] in ("", ".", ":", " ", "[")


def problems_of(document: dict[str, Any], path: str, index: int | None = None) -> list[str]:
    """What the schema and the publishing checks say about one part of the document
    (a step by its index, or the trigger): the rest of a draft may be half done."""
    try:
        checks.publishable(document)
        return []
    except DefinitionError as exc:
        found = [p for p in exc.problems if _about(path, p) or (index is not None and _about(f"steps[{index}]", p))]
    if index is None:
        return found
    step = document["steps"][index]
    ids = [s.get("id") for s in document["steps"] if isinstance(s, dict)]
    extra = []
    if ids.count(step["id"]) > 1:
        extra.append(f"{path}.id: {step['id']!r} is used by another step")
    schema = STEP_SCHEMAS.get(step["type"])
    try:
        loaded = schema().load(step) if schema else {}
    except Exception:  # the schema's own problems are in `found`
        loaded = {}
    extra += [f"{path}.{name}: no step {target!r}" for name, target in checks.targets(loaded) if target not in ids]
    return found + [p for p in extra if p not in found]
