"""The variables a template asks for, as form inputs, and the TemplateInput they make.

Reads the template's components the way templates.build() checks them: body
placeholders ({{1}} or {{name}}), a text header placeholder or a media header, dynamic
URL buttons and copy-code buttons."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from flask_babel import lazy_gettext as _l

from hub.channels.whatsapp.templates import parameters as tpl
from hub.models import Template


@dataclass(frozen=True)
class Variable:
    key: str  # the form input's name
    label: str
    placeholder: str = ""


def _buttons(template: Template) -> list[dict[str, Any]]:
    return (tpl.component(template, "BUTTONS") or {}).get("buttons") or []


def variables(template: Template) -> list[Variable]:
    out: list[Variable] = []
    header = tpl.component(template, "HEADER")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt == "TEXT" and tpl.placeholders(header.get("text")):
            out.append(Variable("header", str(_l("Header")), header.get("text", "")))
        elif fmt in tpl.MEDIA_FORMATS:
            out.append(Variable("header_link", str(_l("Header %(kind)s URL", kind=fmt.lower())), "https://"))
        elif fmt == "LOCATION":
            out.append(Variable("header_latitude", str(_l("Header location: latitude")), "52.52"))
            out.append(Variable("header_longitude", str(_l("Header location: longitude")), "13.40"))
    body = tpl.component(template, "BODY") or {}
    for name in tpl.placeholders(body.get("text")):
        out.append(Variable(f"body_{name}", "{{" + name + "}}"))
    for index, button in enumerate(_buttons(template)):
        kind = str(button.get("type", "")).upper()
        if kind == "URL" and tpl.placeholders(button.get("url")):
            out.append(Variable(f"button_{index}", str(_l("Button “%(text)s”: end of the URL",
                                                          text=button.get("text", ""))), button.get("url", "")))
        elif kind == "COPY_CODE":
            out.append(Variable(f"button_{index}", str(_l("Button %(n)s: coupon code", n=index + 1))))
    return out


def template_input(template: Template, form: Mapping[str, str]) -> tpl.TemplateInput:
    """What the operator typed, shaped as templates.build() expects."""
    names = tpl.placeholders((tpl.component(template, "BODY") or {}).get("text"))
    named = (template.parameter_format or "POSITIONAL").upper() == "NAMED"
    values = {n: form.get(f"body_{n}", "").strip() for n in names}
    body: Any = (values if named else [values[n] for n in names]) if names else None
    header: Any = None
    header_spec = tpl.component(template, "HEADER")
    if header_spec is not None:
        fmt = str(header_spec.get("format", "TEXT")).upper()
        if fmt == "TEXT" and form.get("header", "").strip():
            header = form["header"].strip()
        elif fmt in tpl.MEDIA_FORMATS and form.get("header_link", "").strip():
            kind = tpl.MEDIA_FORMATS[fmt]
            header = {"type": kind, kind: {"link": form["header_link"].strip()}}
        elif fmt == "LOCATION" and form.get("header_latitude") and form.get("header_longitude"):
            header = {"type": "location", "location": {"latitude": form["header_latitude"],
                                                       "longitude": form["header_longitude"]}}
    buttons = []
    for index, button in enumerate(_buttons(template)):
        value = form.get(f"button_{index}", "").strip()
        kind = str(button.get("type", "")).upper()
        if value and kind == "URL":
            buttons.append({"index": index, "sub_type": "url", "text": value})
        elif value and kind == "COPY_CODE":
            buttons.append({"index": index, "sub_type": "copy_code", "coupon_code": value})
    return tpl.TemplateInput(template.name, template.language, body, header, buttons or None)


def preview(template: Template, form: Mapping[str, str] | None) -> tuple[dict[str, Any], str | None]:
    """The rendered template with what was typed so far, and why it cannot be sent yet."""
    if form is None:
        return tpl.render(template), None
    try:
        built = tpl.build(template, template_input(template, form))
    except tpl.TemplateProblem as exc:
        return tpl.render(template, _partial(template, form)), str(exc)
    return tpl.render(template, built), None


def _partial(template: Template, form: Mapping[str, str]) -> dict[str, Any]:
    """Parameters for render() with what is filled in; blanks keep their placeholder."""
    named = (template.parameter_format or "POSITIONAL").upper() == "NAMED"

    def params(names: list[str], prefix: str) -> list[dict[str, Any]]:
        out = []
        for name in names:
            value = form.get(prefix + name, "").strip() if prefix != "header" else form.get("header", "").strip()
            param: dict[str, Any] = {"type": "text", "text": value or "{{" + name + "}}"}
            if named:
                param["parameter_name"] = name
            out.append(param)
        return out

    components = []
    header = tpl.component(template, "HEADER")
    if header is not None and str(header.get("format", "TEXT")).upper() == "TEXT":
        components.append({"type": "header", "parameters": params(tpl.placeholders(header.get("text")), "header")})
    body = tpl.component(template, "BODY") or {}
    components.append({"type": "body", "parameters": params(tpl.placeholders(body.get("text")), "body_")})
    return {"components": components}
