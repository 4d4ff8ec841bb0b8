"""Stage rules: "deal entered stage X -> send template T with variables from the deal/contact".

A rule is one line an admin types in the Settings form, e.g.

    when stage = closedwon send order_shipped (en_US) with deal.dealname, contact.firstname
    when stage = 1234567 in pipeline 987 send feedback_request (pt_BR)

Lines are parsed when the settings are saved, so a typo is refused with a message instead
of silently never firing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SYNTAX_HELP = ("when stage = <stage id> [in pipeline <pipeline id>] send <template> (<language>) "
               "[with deal.<property>, contact.<property>, ...]")

_RULE = re.compile(
    r"^\s*when\s+stage\s*=\s*(?P<stage>[A-Za-z0-9_\-]+)"
    r"(?:\s+in\s+pipeline\s+(?P<pipeline>[A-Za-z0-9_\-]+))?"
    r"\s+send\s+(?P<template>[a-z0-9_]+)"
    r"\s*\(\s*(?P<language>[A-Za-z]{2,3}(?:_[A-Za-z]{2,4})?)\s*\)"
    r"(?:\s+with\s+(?P<vars>.+?))?\s*$"
)
_VARIABLE = re.compile(r"^(deal|contact)\.([a-z][a-z0-9_]*)$")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Variable:
    source: str  # "deal" | "contact"
    name: str    # HubSpot property name


@dataclass(frozen=True)
class StageRule:
    stage: str
    pipeline: str | None
    template: str
    language: str
    variables: tuple[Variable, ...]

    def matches(self, stage: str, pipeline: str | None) -> bool:
        if stage != self.stage:
            return False
        return self.pipeline is None or self.pipeline == pipeline


def parse_rule(line: str) -> StageRule:
    match = _RULE.match(line or "")
    if not match:
        raise RuleError(f"cannot read {line!r}; write: {SYNTAX_HELP}")
    variables = []
    if match.group("vars"):
        for part in match.group("vars").split(","):
            item = part.strip()
            var = _VARIABLE.match(item)
            if not var:
                raise RuleError(f"variable {item!r} must be deal.<property> or contact.<property>")
            variables.append(Variable(var.group(1), var.group(2)))
    return StageRule(
        stage=match.group("stage"),
        pipeline=match.group("pipeline"),
        template=match.group("template"),
        language=match.group("language"),
        variables=tuple(variables),
    )


def parse_rules(lines: list[str]) -> list[StageRule]:
    return [parse_rule(line) for line in lines if line and line.strip()]


def properties_needed(rules: list[StageRule]) -> tuple[set[str], set[str]]:
    """(deal properties, contact properties) the rules' variables read."""
    deal = {v.name for r in rules for v in r.variables if v.source == "deal"}
    contact = {v.name for r in rules for v in r.variables if v.source == "contact"}
    return deal, contact


def variable_values(rule: StageRule, deal: dict[str, Any], contact: dict[str, Any]) -> list[str]:
    """The template's body variables in order; an absent property gives ""."""
    values = []
    for var in rule.variables:
        source = deal if var.source == "deal" else contact
        value = source.get(var.name)
        values.append("" if value is None else str(value))
    return values
