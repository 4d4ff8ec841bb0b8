"""Stage rules: "deal entered stage X -> send WhatsApp template T with these variables".

One rule per line, for example::

    142 -> order_delivered:en(contact.first_name, lead.field[ORDER_NO] | "your order")
    7000001/7000014 -> order_shipped:pt_BR(name=contact.name, tracking=lead.field[583921])

The left side is a stage id, optionally prefixed by its pipeline id (stage ids 142 "won"
and 143 "lost" exist in every pipeline, so they usually need the pipeline). The right
side is a template name and language, then the body variables: positional ({{1}},
{{2}}, ...) or named, never both. A variable is a deal field (lead.name, lead.id,
lead.price, lead.field[<id or code>]), a contact field (contact.name,
contact.first_name, contact.last_name, contact.phone, contact.field[<id or code>]) or a
"literal"; `| "fallback"` gives the value used when the field is empty.

Parsing and evaluation are pure; the connector fetches the deal and contact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

LEAD_ATTRS = ("name", "id", "price", "field")
CONTACT_ATTRS = ("name", "first_name", "last_name", "phone", "field")

_RULE = re.compile(
    r"^\s*(?:(?P<pipeline>\d+)\s*/\s*)?(?P<status>\d+)\s*->\s*"
    r"(?P<template>[a-z0-9_]+)\s*:\s*(?P<language>[a-z]{2,3}(?:_[A-Z]{2})?)\s*"
    r"(?:\((?P<args>.*)\))?\s*$"
)
_EXPR = re.compile(
    r"^(?P<source>lead|contact)\.(?P<attr>[a-z_]+)(?:\[(?P<key>[A-Za-z0-9_]+)\])?$"
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^,"|=]+|[,|=]')


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Expr:
    source: str  # "lead", "contact" or "literal"
    attr: str = ""  # name, id, ..., field; the text for literals
    key: str | None = None  # field id or code for attr == "field"

    def render(self) -> str:
        if self.source == "literal":
            return '"' + self.attr.replace("\\", "\\\\").replace('"', '\\"') + '"'
        suffix = f"[{self.key}]" if self.key is not None else ""
        return f"{self.source}.{self.attr}{suffix}"


@dataclass(frozen=True)
class Arg:
    expr: Expr
    name: str | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class Rule:
    status_id: int
    template: str
    language: str
    pipeline_id: int | None = None
    args: tuple[Arg, ...] = field(default_factory=tuple)
    text: str = ""

    @property
    def named(self) -> bool:
        return bool(self.args) and self.args[0].name is not None

    def matches(self, pipeline_id: int | None, status_id: int) -> bool:
        if status_id != self.status_id:
            return False
        return self.pipeline_id is None or self.pipeline_id == pipeline_id

    def needs_contact(self) -> bool:
        return any(a.expr.source == "contact" for a in self.args)


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _parse_expr(text: str) -> Expr:
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return Expr("literal", _unquote(text))
    match = _EXPR.match(text)
    if not match:
        raise RuleError(
            f"{text!r} is not a variable; use lead.name, lead.id, lead.price, lead.field[ID or CODE], "
            f"contact.name, contact.first_name, contact.last_name, contact.phone, "
            f"contact.field[ID or CODE] or a \"quoted text\""
        )
    source, attr, key = match.group("source"), match.group("attr"), match.group("key")
    allowed = LEAD_ATTRS if source == "lead" else CONTACT_ATTRS
    if attr not in allowed:
        raise RuleError(f"{source}.{attr} is unknown; {source} has {', '.join(allowed)}")
    if (attr == "field") != (key is not None):
        raise RuleError(f"{text!r}: use {source}.field[ID or CODE] for custom fields "
                        f"and no brackets otherwise")
    return Expr(source, attr, key)


def _split_args(text: str) -> list[list[str]]:
    """Tokens of each comma-separated argument (quotes respected)."""
    tokens = _TOKEN.findall(text)
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise RuleError(f"unbalanced quotes in ({text})")
    args: list[list[str]] = [[]]
    for token in tokens:
        if token == ",":
            args.append([])
        elif token.strip():
            args[-1].append(token.strip())
    return args


def _parse_arg(tokens: list[str]) -> Arg:
    if not tokens:
        raise RuleError("empty variable (two commas in a row?)")
    name = None
    if len(tokens) >= 2 and tokens[1] == "=":
        name = tokens[0]
        if not _NAME.match(name):
            raise RuleError(f"variable name {name!r} must be lowercase letters, digits and _")
        tokens = tokens[2:]
    fallback = None
    if "|" in tokens:
        i = tokens.index("|")
        tail = tokens[i + 1:]
        if len(tail) != 1 or not tail[0].startswith('"'):
            raise RuleError('a fallback after | must be one "quoted text"')
        fallback = _unquote(tail[0])
        tokens = tokens[:i]
    if len(tokens) != 1:
        raise RuleError(f"cannot read variable {' '.join(tokens)!r}")
    return Arg(_parse_expr(tokens[0]), name, fallback)


def parse_rule(text: str) -> Rule:
    match = _RULE.match(text or "")
    if not match:
        raise RuleError(
            f"{text!r} is not a rule; write STAGE_ID -> template_name:language(variables), "
            f"optionally PIPELINE_ID/STAGE_ID on the left, e.g. "
            f'7000001/142 -> order_delivered:en(contact.first_name, lead.field[ORDER_NO] | "-")'
        )
    args: list[Arg] = []
    raw_args = match.group("args")
    if raw_args is not None and raw_args.strip():
        args = [_parse_arg(tokens) for tokens in _split_args(raw_args)]
    names = [a.name for a in args]
    if any(n is None for n in names) and any(n is not None for n in names):
        raise RuleError("variables are either all positional or all named (name=...), not mixed")
    named = [n for n in names if n is not None]
    if len(set(named)) != len(named):
        raise RuleError("a variable name is used twice")
    return Rule(
        status_id=int(match.group("status")),
        template=match.group("template"),
        language=match.group("language"),
        pipeline_id=int(match.group("pipeline")) if match.group("pipeline") else None,
        args=tuple(args),
        text=text.strip(),
    )


def parse_rules(lines: Iterable[str]) -> list[Rule]:
    """All rules, or RuleError naming the first bad line (1-based)."""
    rules = []
    for n, line in enumerate(lines, start=1):
        try:
            rules.append(parse_rule(line))
        except RuleError as exc:
            raise RuleError(f"rule {n}: {exc}") from None
    return rules


def check_templates(rules: list[Rule], templates: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems with rules against the hub's stored templates.

    A template is {"name", "language", "status"?, "parameters"?} where parameters is the
    number of positional body variables or the list of named ones.
    """
    known: dict[tuple[str, str], Mapping[str, Any]] = {
        (str(t.get("name")), str(t.get("language"))): t for t in templates
    }
    problems = []
    for n, rule in enumerate(rules, start=1):
        tpl = known.get((rule.template, rule.language))
        if tpl is None:
            same_name = sorted(lang for (name, lang) in known if name == rule.template)
            hint = f" (it exists in {', '.join(same_name)})" if same_name else ""
            problems.append(f"rule {n}: no template {rule.template!r} in language {rule.language!r}{hint}")
            continue
        status = str(tpl.get("status") or "APPROVED").upper()
        if status != "APPROVED":
            problems.append(f"rule {n}: template {rule.template}:{rule.language} is {status}, not APPROVED")
        params = tpl.get("parameters")
        if isinstance(params, int) and not rule.named and params != len(rule.args):
            problems.append(f"rule {n}: template {rule.template}:{rule.language} takes {params} "
                            f"variables, the rule gives {len(rule.args)}")
        elif isinstance(params, (list, tuple)):
            wanted = set(map(str, params))
            given = {a.name for a in rule.args if a.name}
            if not rule.named and rule.args:
                problems.append(f"rule {n}: template {rule.template}:{rule.language} takes named "
                                f"variables ({', '.join(sorted(wanted))})")
            elif given != wanted:
                problems.append(f"rule {n}: template {rule.template}:{rule.language} takes "
                                f"{', '.join(sorted(wanted)) or 'no variables'}, the rule gives "
                                f"{', '.join(sorted(given)) or 'none'}")
    return problems


class MissingValue(LookupError):
    pass


def field_value(fields_: Mapping[str, str], key: str) -> str:
    return fields_.get(key) or fields_.get(key.upper()) or ""


def _value(expr: Expr, lead: Mapping[str, Any], contact: Mapping[str, Any] | None) -> str:
    if expr.source == "literal":
        return expr.attr
    entity = lead if expr.source == "lead" else (contact or {})
    if expr.attr == "field":
        return field_value(entity.get("fields") or {}, expr.key or "")
    value = entity.get(expr.attr)
    return "" if value is None else str(value)


def variables(rule: Rule, lead: Mapping[str, Any],
              contact: Mapping[str, Any] | None) -> list[str] | dict[str, str]:
    """The template variables for one deal. `lead`/`contact` are flattened views:
    {"id", "name", "price", "fields": {id or code: value}} and {"name", "first_name",
    "last_name", "phone", "fields"}. Raises MissingValue for an empty field without
    fallback (WhatsApp refuses empty template parameters)."""
    values = []
    for arg in rule.args:
        value = _value(arg.expr, lead, contact).strip()
        if not value:
            if arg.fallback is None:
                raise MissingValue(f"{arg.expr.render()} is empty for deal {lead.get('id')}")
            value = arg.fallback
        values.append(value)
    if rule.named:
        return {a.name: v for a, v in zip(rule.args, values)}  # type: ignore[misc]
    return values
