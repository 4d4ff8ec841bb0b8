"""Composition: a template's variables filled per recipient from their CSV columns,
contact fields or a fixed value. Pure: the template and rows in, inputs or the list of
rows that cannot be filled out.

A variable's source is {"column": "first_name"} (the CSV column), {"contact": "name"}
(the contact's name or phone, or one of its custom fields: {"contact": "city"}) or
{"value": "..."}, or what the CRM last reported for the contact's deal (hub.crm.contact_stages):
{"crm": "stage_name"} (or stage, outcome, deal_id, pipeline) of the deal changed last, or
{"crm": "stage_name", "pipeline": "sales"} of that pipeline's. Positional templates take a
list of sources, named ones an object of them by name. Custom fields and CRM values are
looked up when the audience is read (`custom_fields`, `crm_sources` name them) and travel
in a member's variables as "contact.<field>" and `crm_key(...)`. A recipient the CRM has
no value for is skipped (missing_variables), not a reason to refuse the broadcast.
"""
from __future__ import annotations

from typing import Any

from hub.channels.base import TemplateInput
from hub.channels.whatsapp.templates import parameters as tpl
from hub.conversations.tags_and_fields import AttributeProblem, check_field_name
from hub.models import Template

CONTACT_FIELDS = ("name", "phone")
CRM_FIELDS = ("stage_name", "stage", "outcome", "deal_id", "pipeline")
KINDS = ("column", "contact", "crm", "value")
PIPELINE_MAX = 64


def crm_key(field: str, pipeline: str | None = None) -> str:
    """Where a CRM value travels in a member's variables."""
    return f"crm.{field}" if pipeline is None else f"crm.{field}@{pipeline}"


class CompositionProblem(ValueError):
    """The broadcast cannot be composed; `field` names what to fix, `rows` the rows."""

    def __init__(self, message: str, *, field: str, rows: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.field = field
        self.rows = rows or []


def _kind(source: dict[str, Any]) -> tuple[str, Any]:
    kind = "crm" if "crm" in source else next(iter(source))
    return kind, source[kind]


def _check_crm(source: dict[str, Any], where: str) -> None:
    unknown = sorted(set(source) - {"crm", "pipeline"})
    if unknown:
        raise CompositionProblem(f"{where}: unknown key {unknown[0]!r} beside crm; known: pipeline",
                                 field=f"{where}.{unknown[0]}")
    if source["crm"] not in CRM_FIELDS:
        raise CompositionProblem(f"{where}.crm: {source['crm']!r} is not a CRM value the hub keeps; known: "
                                 f"{', '.join(CRM_FIELDS)}", field=f"{where}.crm")
    pipeline = source.get("pipeline")
    if "pipeline" in source and (not isinstance(pipeline, str) or not pipeline.strip()
                                 or len(pipeline) > PIPELINE_MAX):
        raise CompositionProblem(f"{where}.pipeline must be a non-empty text of at most {PIPELINE_MAX} characters",
                                 field=f"{where}.pipeline")


def _check_source(source: Any, where: str, columns: list[str] | None) -> None:
    if isinstance(source, dict) and "crm" in source:
        _check_crm(source, where)
        return
    if not isinstance(source, dict) or len(source) != 1 or next(iter(source)) not in KINDS:
        raise CompositionProblem(f'{where}: give {{"column": ...}}, {{"contact": ...}}, {{"crm": ...}} or '
                                 f'{{"value": ...}}', field=where)
    kind, name = next(iter(source.items()))
    if not isinstance(name, str) or (kind != "value" and not name):
        raise CompositionProblem(f"{where}: {kind} must be a text", field=where)
    if kind == "contact" and name not in CONTACT_FIELDS:
        try:
            check_field_name(name, where=where)
        except AttributeProblem:
            raise CompositionProblem(f"{where}: {name!r} is neither {' nor '.join(CONTACT_FIELDS)} nor a custom "
                                     "field name (a-z, 0-9, _)", field=where) from None
    if kind == "column" and columns is not None and name not in columns:
        raise CompositionProblem(f"{where}: the audience has no column {name!r}; its columns are "
                                 f"{', '.join(columns) or 'none'}", field=where)


HEADER_TEXT_MAX = 60  # Meta: a header's text, variable included


def check_header(header: Any) -> None:
    if isinstance(header, str) and len(header) > HEADER_TEXT_MAX:
        raise CompositionProblem(f"header: a text header parameter has at most {HEADER_TEXT_MAX} characters",
                                 field="header")


def check_spec(template: Template, spec: Any, columns: list[str] | None, header: Any = None) -> None:
    """The sources fit the template's placeholders (count or names) and the audience."""
    check_header(header)
    wanted = tpl.body_parameters(template)
    if isinstance(wanted, int):
        given = spec if isinstance(spec, list) else None
        if given is None or len(given) != wanted:
            raise CompositionProblem(f"template {template.name} takes {wanted} body variables: give a list of "
                                     f"{wanted} sources", field="variables")
        for i, source in enumerate(given):
            _check_source(source, f"variables[{i}]", columns)
    else:
        if not isinstance(spec, dict) or sorted(spec) != sorted(wanted):
            raise CompositionProblem(f"template {template.name} takes the named variables "
                                     f"{', '.join(wanted)}: give an object of sources by those names",
                                     field="variables")
        for name, source in spec.items():
            _check_source(source, f"variables.{name}", columns)


def custom_fields(spec: Any) -> list[str]:
    """The contact custom fields the sources read."""
    return sorted({s["contact"] for s in _sources(spec)
                   if isinstance(s, dict) and isinstance(s.get("contact"), str) and s["contact"] not in CONTACT_FIELDS})


def _sources(spec: Any) -> list[Any]:
    return spec if isinstance(spec, list) else list(spec.values()) if isinstance(spec, dict) else []


def crm_sources(spec: Any) -> list[tuple[str, str | None]]:
    """The (CRM value, pipeline or None) pairs the sources read."""
    return sorted({(s["crm"], s.get("pipeline")) for s in _sources(spec) if isinstance(s, dict)
                   and isinstance(s.get("crm"), str)}, key=lambda p: (p[0], p[1] or ""))


def _value(source: dict[str, Any], member: dict[str, Any]) -> str:
    kind, name = _kind(source)
    if kind == "value":
        return name
    variables = member.get("variables") or {}
    if kind == "crm":
        return str(variables.get(crm_key(name, source.get("pipeline"))) or "")
    if kind == "contact":
        if name == "phone":
            return str(member["phone"])
        return str(variables.get(name if name == "name" else f"contact.{name}") or "")
    return str(variables.get(name) or "")


def fill(template: Template, spec: Any, member: dict[str, Any], *, header: Any = None,
         buttons: list[dict[str, Any]] | None = None) -> tuple[TemplateInput | None, list[str]]:
    """The member's template input, or None and the variables that came out empty."""
    if isinstance(spec, dict):
        values: Any = {n: _value(s, member) for n, s in spec.items()}
        missing = [n for n, v in values.items() if not v.strip()]
    else:
        values = [_value(s, member) for s in spec or []]
        missing = [_label(s, i) for i, (s, v) in enumerate(zip(spec or [], values)) if not v.strip()]
    if missing:
        return None, missing
    return TemplateInput(name=template.name, language=template.language, body=values or None, header=header,
                         buttons=buttons), []


def _label(source: dict[str, Any], index: int) -> str:
    kind, name = _kind(source)
    pipeline = f" in {source['pipeline']}" if kind == "crm" and "pipeline" in source else ""
    return f"{{{{{index + 1}}}}} ({kind} {name}{pipeline})"


def without_crm(spec: Any) -> Any:
    """The sources with each CRM one as a fixed text: what must hold for every recipient
    (the CRM values may be missing for some, who are then skipped)."""
    def plain(source: Any) -> Any:
        return {"value": "crm"} if isinstance(source, dict) and "crm" in source else source
    return [plain(s) for s in spec] if isinstance(spec, list) else \
        {n: plain(s) for n, s in spec.items()} if isinstance(spec, dict) else spec


def rows_missing_variables(template: Template, spec: Any, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for member in members:
        _, missing = fill(template, spec, member)
        if missing:
            out.append({"row": member.get("row"), "phone": member["phone"], "missing": missing})
    return out


def preview(template: Template, spec: Any, members: list[dict[str, Any]], *, header: Any = None,
            buttons: list[dict[str, Any]] | None = None, count: int = 3) -> list[dict[str, Any]]:
    """The message as the first `count` recipients would read it."""
    out = []
    for member in members[:count]:
        given, missing = fill(template, spec, member, header=header, buttons=buttons)
        if given is None:
            out.append({"phone": member["phone"], "missing": missing, "text": None})
            continue
        built = tpl.build(template, given)
        out.append({"phone": member["phone"], "missing": [], "text": tpl.as_text(tpl.render(template, built))})
    return out
