"""Message templates: parameters checked against the stored template before anything is
sent (Meta would refuse with 132000/132012 after a network round trip), a rendered
preview for people and timelines, and the sync from the WhatsApp Business Account."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channels.base import TemplateInput  # noqa: F401  (defined with the channel contract)
from hub.models import Template

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
BODY_TYPES = {"text", "currency", "date_time"}


class TemplateProblem(ValueError):
    """Parameters do not fit the template; the message says how."""


def find(session: Session, waba_id: str, name: str, language: str) -> Template | None:
    return session.scalar(select(Template).where(
        Template.waba_id == waba_id, Template.name == name, Template.language == language))


def usable(session: Session, waba_id: str) -> list[Template]:
    return list(session.scalars(select(Template).where(
        Template.waba_id == waba_id, Template.status == "APPROVED").order_by(Template.name, Template.language)))


def component(template: Template, kind: str) -> dict[str, Any] | None:
    """The template's HEADER / BODY / FOOTER / BUTTONS component, if it has one."""
    for c in template.components or []:
        if str(c.get("type", "")).upper() == kind:
            return c
    return None


def placeholders(text: str | None) -> list[str]:
    """The {{1}} / {{name}} placeholders of a text, each once, in order."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def body_parameters(template: Template) -> int | list[str]:
    """How many positional body variables the template takes, or the names of its named ones."""
    names = placeholders((component(template, "BODY") or {}).get("text"))
    if (template.parameter_format or "POSITIONAL").upper() == "NAMED":
        return names
    return len(names)


def _as_body_parameter(value: Any, name: str | None, where: str) -> dict[str, Any]:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind not in BODY_TYPES:
            raise TemplateProblem(f"{where}: parameter type must be one of {sorted(BODY_TYPES)}, not {kind!r}")
        if kind == "text" and not isinstance(value.get("text"), str):
            raise TemplateProblem(f"{where}: a text parameter needs a string 'text'")
        if kind in ("currency", "date_time") and not (value.get(kind) or {}).get("fallback_value"):
            raise TemplateProblem(f"{where}: a {kind} parameter needs {kind}.fallback_value")
        param = dict(value)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if not text.strip():
            raise TemplateProblem(f"{where}: an empty value is not allowed")
        if len(text) > 1024 or "\n\n\n\n\n" in text:
            raise TemplateProblem(f"{where}: too long or too many new lines")
        param = {"type": "text", "text": text}
    else:
        raise TemplateProblem(f"{where}: give a string or a parameter object")
    if name is not None:
        param["parameter_name"] = name
    return param


def _body(template: Template, given: Any) -> dict[str, Any] | None:
    body = component(template, "BODY")
    names = placeholders(body.get("text") if body else None)
    named = (template.parameter_format or "POSITIONAL").upper() == "NAMED"
    if not names:
        if given:
            raise TemplateProblem(f"template {template.name} takes no body parameters")
        return None
    label = ", ".join("{{" + n + "}}" for n in names)
    if named:
        if not isinstance(given, dict):
            raise TemplateProblem(f"template {template.name} has named parameters ({label}): give an object")
        missing = [n for n in names if n not in given]
        extra = [n for n in given if n not in names]
        if missing or extra:
            raise TemplateProblem(f"template {template.name} expects {label}; "
                                  f"missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'}")
        params = [_as_body_parameter(given[n], n, f"body.{n}") for n in names]
    else:
        values = list(given or []) if not isinstance(given, dict) else None
        if values is None:
            raise TemplateProblem(f"template {template.name} has positional parameters ({label}): give a list")
        if len(values) != len(names):
            raise TemplateProblem(f"template {template.name} expects {len(names)} body parameters "
                                  f"({label}), got {len(values)}")
        params = [_as_body_parameter(v, None, f"body[{i}]") for i, v in enumerate(values)]
    return {"type": "body", "parameters": params}


def _header(template: Template, given: Any) -> dict[str, Any] | None:
    header = component(template, "HEADER")
    fmt = str((header or {}).get("format", "TEXT")).upper()
    if header is None or (fmt == "TEXT" and not placeholders(header.get("text"))):
        if given:
            raise TemplateProblem(f"template {template.name} has no header parameter")
        return None
    if fmt == "TEXT":
        if not isinstance(given, str) or not given.strip():
            raise TemplateProblem(f"template {template.name} needs a text header parameter")
        return {"type": "header", "parameters": [{"type": "text", "text": given}]}
    if fmt in MEDIA_FORMATS:
        kind = MEDIA_FORMATS[fmt]
        media = given.get(kind) if isinstance(given, dict) else None
        if not isinstance(media, dict) or not (media.get("link") or media.get("id")):
            raise TemplateProblem(f"template {template.name} needs a {kind} header: "
                                  f'{{"type": "{kind}", "{kind}": {{"link": "https://..."}}}}')
        return {"type": "header", "parameters": [{"type": kind, kind: media}]}
    if fmt == "LOCATION":
        location = given.get("location") if isinstance(given, dict) else None
        if not isinstance(location, dict) or "latitude" not in location or "longitude" not in location:
            raise TemplateProblem(f"template {template.name} needs a location header with latitude and longitude")
        return {"type": "header", "parameters": [{"type": "location", "location": location}]}
    raise TemplateProblem(f"template {template.name} has a {fmt} header the hub cannot fill")


def _buttons(template: Template, given: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    declared = (component(template, "BUTTONS") or {}).get("buttons") or []
    given_by_index = {}
    for b in given or []:
        try:
            index = int(b.get("index"))
        except (TypeError, ValueError):
            raise TemplateProblem("each button parameter needs an integer 'index'") from None
        if not 0 <= index < len(declared):
            raise TemplateProblem(f"template {template.name} has no button {index}")
        given_by_index[index] = b
    out = []
    for index, button in enumerate(declared):
        kind = str(button.get("type", "")).upper()
        b = given_by_index.get(index)
        if kind == "URL" and placeholders(button.get("url")):
            if not b or not str(b.get("text") or "").strip():
                raise TemplateProblem(f"template {template.name}: button {index} ({button.get('text')}) has a "
                                      f"dynamic URL; give its suffix as text")
            out.append({"type": "button", "sub_type": "url", "index": str(index),
                        "parameters": [{"type": "text", "text": str(b["text"])}]})
        elif kind == "QUICK_REPLY" and b and b.get("payload"):
            out.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                        "parameters": [{"type": "payload", "payload": str(b["payload"])}]})
        elif kind == "COPY_CODE":
            if not b or not b.get("coupon_code"):
                raise TemplateProblem(f"template {template.name}: button {index} needs a coupon_code")
            out.append({"type": "button", "sub_type": "copy_code", "index": str(index),
                        "parameters": [{"type": "coupon_code", "coupon_code": str(b["coupon_code"])}]})
        elif b and kind not in ("URL", "QUICK_REPLY"):
            raise TemplateProblem(f"template {template.name}: button {index} ({kind}) takes no parameters here")
    return out


def build(template: Template, given: TemplateInput) -> dict[str, Any]:
    """The `template` object of a send request, after checking it fits."""
    if template.status != "APPROVED":
        raise TemplateProblem(f"template {template.name} ({template.language}) is {template.status}, "
                              f"not APPROVED: it cannot be sent")
    components = [c for c in (_header(template, given.header), _body(template, given.body)) if c]
    components += _buttons(template, given.buttons)
    payload: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        payload["components"] = components
    return payload


def _value_text(param: dict[str, Any]) -> str:
    kind = param.get("type")
    if kind == "text":
        return param.get("text", "")
    if kind in ("currency", "date_time"):
        return (param.get(kind) or {}).get("fallback_value", "")
    return f"[{kind}]"


def _substitute(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def render(template: Template, built: dict[str, Any] | None = None) -> dict[str, Any]:
    """Texts with variables filled in (unfilled placeholders stay visible)."""
    values: dict[str, dict[str, str]] = {"header": {}, "body": {}}
    for comp in (built or {}).get("components", []):
        if comp["type"] in values:
            for i, param in enumerate(comp["parameters"]):
                values[comp["type"]][param.get("parameter_name") or str(i + 1)] = _value_text(param)
    header = component(template, "HEADER")
    body = component(template, "BODY")
    footer = component(template, "FOOTER")
    buttons = (component(template, "BUTTONS") or {}).get("buttons") or []
    header_text = None
    if header:
        fmt = str(header.get("format", "TEXT")).upper()
        header_text = _substitute(header.get("text", ""), values["header"]) if fmt == "TEXT" else f"[{fmt.lower()}]"
    return {
        "header": header_text,
        "body": _substitute((body or {}).get("text", ""), values["body"]),
        "footer": (footer or {}).get("text"),
        "buttons": [b.get("text", "") for b in buttons],
    }


def as_text(preview: dict[str, Any]) -> str:
    parts = [preview.get("header"), preview.get("body"), preview.get("footer")]
    text = "\n".join(p for p in parts if p)
    if preview.get("buttons"):
        text += "\n" + " | ".join(f"[{b}]" for b in preview["buttons"])
    return text


def upsert_synced(session: Session, waba_id: str, item: dict[str, Any], now: datetime) -> Template:
    template = find(session, waba_id, item["name"], item["language"])
    if template is None:
        template = Template(waba_id=waba_id, name=item["name"], language=item["language"], created_at=now)
        session.add(template)
    template.wa_template_id = str(item.get("id") or template.wa_template_id or "") or None
    template.status = str(item.get("status") or "PENDING").upper()
    template.category = (item.get("category") or template.category or None)
    if template.category:
        template.category = template.category.upper()
    quality = item.get("quality_score")
    template.quality_score = quality.get("score") if isinstance(quality, dict) else quality
    template.parameter_format = str(item.get("parameter_format") or "POSITIONAL").upper()
    template.components = item.get("components") or []
    if item.get("rejected_reason") and item["rejected_reason"] != "NONE":
        template.status_reason = item["rejected_reason"]
    template.synced_at = now
    template.updated_at = now
    return template
