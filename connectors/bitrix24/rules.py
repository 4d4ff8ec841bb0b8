"""Stage -> template rules and the other line-based settings, parsed and validated.

One rule a line, e.g.

    C1:WON -> order_shipped:en | contact.NAME, deal.TITLE
    lead:IN_PROCESS -> first_reply

reads "when a deal enters stage C1:WON, send the approved template order_shipped in
English with {{1}} = the contact's first name and {{2}} = the deal title". Without a
`deal:`/`lead:` prefix a rule applies to the connector's target entity.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_RULE = re.compile(
    r"^(?:(?P<entity>deal|lead):)?(?P<stage>[A-Za-z0-9_]+(?::[A-Za-z0-9_]+)?)\s*->\s*"
    r"(?P<template>[a-z0-9_]+)(?::(?P<language>[a-z]{2,3}(?:_[A-Z]{2})?))?"
    r"(?:\s*\|\s*(?P<vars>.*))?$"
)
_VAR = re.compile(r"^(deal|lead|contact)\.([A-Z][A-Z0-9_]*)$")
_MAPPING = re.compile(r"^(?P<field>[A-Z][A-Z0-9_]*)\s*=\s*(?P<source>[a-z_]+(?:\.[a-z_]+)?)$")
_OPERATOR = re.compile(r"^(?P<email>[^\s=]+@[^\s=]+)\s*=\s*(?P<user>\d+)$")

LEAD_SOURCE_KEYS = frozenset({
    "kind", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid", "yclid",
    "fbclid", "campaign", "link", "code", "landing_page", "referrer",
    "referral.source_url", "referral.source_id", "referral.source_type", "referral.headline",
    "referral.body", "referral.media_type", "referral.ctwa_clid",
})
MAPPABLE_FIELD = re.compile(r"^(UTM_(SOURCE|MEDIUM|CAMPAIGN|CONTENT|TERM)|SOURCE_DESCRIPTION|UF_CRM_[A-Z0-9_]+)$")
DEFAULT_UTM_MAPPING = (
    "UTM_SOURCE=utm_source\nUTM_MEDIUM=utm_medium\nUTM_CAMPAIGN=utm_campaign\n"
    "UTM_CONTENT=utm_content\nUTM_TERM=utm_term"
)


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class StageRule:
    entity: str | None  # "deal", "lead" or None (the target entity)
    stage: str
    template: str
    language: str
    variables: tuple[tuple[str, str], ...]  # (("contact", "NAME"), ("deal", "TITLE"))

    def applies_to(self, entity: str, target: str) -> bool:
        return (self.entity or target) == entity


def _lines(text: str | None) -> list[tuple[int, str]]:
    out = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def parse_rules(text: str | None, default_language: str = "en") -> list[StageRule]:
    rules = []
    for number, line in _lines(text):
        m = _RULE.match(line)
        if not m:
            raise RuleError(
                f"line {number}: {line!r} is not a rule; write STAGE_ID -> template[:language] "
                "[| contact.NAME, deal.TITLE]"
            )
        variables = []
        for part in [p.strip() for p in (m.group("vars") or "").split(",") if p.strip()]:
            v = _VAR.match(part)
            if not v:
                raise RuleError(f"line {number}: variable {part!r} must look like contact.NAME or deal.TITLE")
            variables.append((v.group(1), v.group(2)))
        rules.append(StageRule(m.group("entity"), m.group("stage"), m.group("template"),
                               m.group("language") or default_language, tuple(variables)))
    return rules


def parse_field_mapping(text: str | None) -> list[tuple[str, str]]:
    """UTM mapping lines "UTM_SOURCE=utm_source" -> [(bitrix field, lead_source key)]."""
    mapping = []
    for number, line in _lines(text):
        m = _MAPPING.match(line)
        if not m:
            raise RuleError(f"line {number}: {line!r} must look like UTM_SOURCE=utm_source")
        if not MAPPABLE_FIELD.match(m.group("field")):
            raise RuleError(f"line {number}: {m.group('field')} is not a UTM_* field, SOURCE_DESCRIPTION "
                            "or a UF_CRM_* custom field")
        if m.group("source") not in LEAD_SOURCE_KEYS:
            raise RuleError(f"line {number}: {m.group('source')!r} is not a lead source field; use one of "
                            + ", ".join(sorted(LEAD_SOURCE_KEYS)))
        mapping.append((m.group("field"), m.group("source")))
    return mapping


def parse_operator_map(text: str | None) -> dict[str, int]:
    """Operator lines "olga@example.com=5" -> {"olga@example.com": 5} (emails lower-cased)."""
    out = {}
    for number, line in _lines(text):
        m = _OPERATOR.match(line)
        if not m:
            raise RuleError(f"line {number}: {line!r} must look like olga@example.com=5 (hub e-mail = Bitrix24 user ID)")
        out[m.group("email").lower()] = int(m.group("user"))
    return out
