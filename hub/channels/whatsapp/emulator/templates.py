"""Templates in the emulator: parameters checked against the stored template on send,
new templates checked on create, and Graph-style cursor paging for the list.

Detail texts mimic Meta's ("body: number of localizable_params (1) does not match the
expected number of params (2)") so a client's error display can be tried for real.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from hub.channels.whatsapp.emulator.errors import GraphError, bad_value, invalid, missing
from hub.channels.whatsapp.emulator.send import Outgoing, as_object, media_ref, string_param
from hub.channels.whatsapp.emulator.state import TEMPLATE_CATEGORIES, Template, placeholders

# template button type -> the sub_type a send request must use for it
BUTTON_SUB_TYPES = {"QUICK_REPLY": "quick_reply", "URL": "url", "OTP": "url",
                    "COPY_CODE": "copy_code", "FLOW": "flow", "CATALOG": "catalog", "MPM": "mpm",
                    "VOICE_CALL": "voice_call"}
BODY_PARAM_TYPES = ("text", "currency", "date_time")
NAME_RE = re.compile(r"^[a-z0-9_]{1,512}$")
NAMED_VAR_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def _mismatch(where: str, got: int, expected: int) -> GraphError:
    return GraphError(132000, f"{where}: number of localizable_params ({got}) does not match "
                              f"the expected number of params ({expected})")


def _format(where: str, expected: str, got: Any) -> GraphError:
    return GraphError(132012, f"{where}: Format mismatch, expected {expected}, received "
                              f"{str(got).upper() if got else 'nothing'}")


def check_template_send(tpl: Template, out: Outgoing) -> None:
    """Raise the error Meta would give for these components; collect media ids in `out`."""
    components = out.payload.get("components") or []
    given: dict[str, tuple[list[Any], str]] = {}
    buttons_given: dict[int, tuple[dict[str, Any], list[Any], str]] = {}
    for i, comp in enumerate(components):
        path = f"template['components'][{i}]"
        c = as_object(comp, path)
        ctype = str(c.get("type", "")).lower()
        if ctype not in ("header", "body", "button", "carousel", "limited_time_offer"):
            raise invalid(f"Param {path}['type'] must be one of {{HEADER, BODY, BUTTON, "
                          f"CAROUSEL, LIMITED_TIME_OFFER}} - got \"{c.get('type')}\".")
        params = c.get("parameters", [])
        if not isinstance(params, list):
            raise invalid(f"Param {path}['parameters'] must be a list.")
        if ctype == "button":
            try:
                index = int(c.get("index"))
            except (TypeError, ValueError):
                raise bad_value(f"Param {path}['index'] must be a button position (0, 1, ...).") from None
            if index in buttons_given:
                raise bad_value(f"Param {path}: button index {index} given twice.")
            buttons_given[index] = (c, params, path)
        elif ctype in ("header", "body"):
            if ctype in given:
                raise bad_value(f"Param {path}: more than one {ctype} component.")
            given[ctype] = (params, path)
    named = tpl.parameter_format.upper() == "NAMED"
    _check_header(tpl.component("HEADER"), given.get("header"), named, out)
    body = tpl.component("BODY")
    _check_text_params("body", placeholders(body.get("text") if body else ""),
                       given.get("body"), named, BODY_PARAM_TYPES)
    _check_buttons(tpl.buttons(), buttons_given)


def _check_header(header: dict[str, Any] | None, given: tuple[list[Any], str] | None,
                  named: bool, out: Outgoing) -> None:
    fmt = str(header.get("format", "TEXT")).upper() if header else "TEXT"
    if header is None or fmt == "TEXT":
        names = placeholders(header.get("text")) if header else []
        _check_text_params("header", names, given, named, ("text",))
        return
    params = given[0] if given else []
    if len(params) != 1:
        raise _mismatch("header", len(params), 1)
    path = f"{given[1]}['parameters'][0]" if given else "header"
    param = as_object(params[0], path)
    ptype = param.get("type")
    if ptype != fmt.lower():
        raise _format("header", fmt, ptype)
    if fmt == "LOCATION":
        loc = as_object(param.get("location"), f"{path}['location']")
        for key in ("latitude", "longitude"):
            if key not in loc:
                raise missing(f"The parameter {path}['location']['{key}'] is required.")
    else:
        media_ref(as_object(param.get(ptype), f"{path}['{ptype}']"), f"{path}['{ptype}']", out)


def _check_text_params(where: str, names: list[str], given: tuple[list[Any], str] | None,
                       named: bool, types: tuple[str, ...]) -> None:
    params, path = given if given else ([], where)
    if len(params) != len(names):
        raise _mismatch(where, len(params), len(names))
    seen: list[str] = []
    for j, raw in enumerate(params):
        ppath = f"{path}['parameters'][{j}]"
        param = as_object(raw, ppath)
        ptype = param.get("type")
        if ptype not in types:
            raise _format(where, " or ".join(t.upper() for t in types), ptype)
        if ptype == "text":
            string_param(param, "text", ppath, max_len=32768)
        elif ptype == "currency":
            cur = as_object(param.get("currency"), f"{ppath}['currency']")
            for key in ("fallback_value", "code", "amount_1000"):
                if key not in cur:
                    raise missing(f"The parameter {ppath}['currency']['{key}'] is required.")
        elif ptype == "date_time":
            date_time = as_object(param.get("date_time"), f"{ppath}['date_time']")
            string_param(date_time, "fallback_value", f"{ppath}['date_time']")
        pname = param.get("parameter_name")
        if named and not pname:
            raise GraphError(132012, f"{where}: parameter_name is required for every parameter "
                                     "of a template with named parameters")
        if not named and pname is not None:
            raise GraphError(132012, f"{where}: parameter_name is only valid for templates with "
                                     "named parameters")
        if named:
            seen.append(str(pname))
    if named and sorted(seen) != sorted(names):
        raise GraphError(132000, f"{where}: parameter names ({', '.join(seen)}) do not match the "
                                 f"template's ({', '.join(names)})")


def _needs_parameter(button: dict[str, Any]) -> bool:
    btype = str(button.get("type", "")).upper()
    if btype == "URL":
        return bool(placeholders(button.get("url")))
    return btype in ("OTP", "COPY_CODE")


def _check_buttons(buttons: list[dict[str, Any]],
                   given: dict[int, tuple[dict[str, Any], list[Any], str]]) -> None:
    for index, (comp, params, path) in sorted(given.items()):
        if not 0 <= index < len(buttons):
            raise bad_value(f"buttons: button at index {index} does not exist in the template "
                            f"({len(buttons)} buttons)")
        btype = str(buttons[index].get("type", "")).upper()
        expected_sub = BUTTON_SUB_TYPES.get(btype)
        sub = str(comp.get("sub_type", "")).lower()
        if sub != expected_sub:
            raise GraphError(132012, f"buttons: button at index {index} is of type {btype}; "
                                     f"sub_type must be {expected_sub}, got {sub or 'nothing'}")
        expected = 1 if _needs_parameter(buttons[index]) else (0 if btype == "URL" else None)
        if expected is not None and len(params) != expected:
            raise _mismatch(f"button at index {index}", len(params), expected)
        want = {"url": "text", "quick_reply": "payload", "copy_code": "coupon_code",
                "flow": "action"}.get(sub)
        for j, raw in enumerate(params):
            param = as_object(raw, f"{path}['parameters'][{j}]")
            if want and param.get("type") != want:
                raise _format(f"button at index {index}", want.upper(), param.get("type"))
            if want in ("text", "payload", "coupon_code"):
                string_param(param, want, f"{path}['parameters'][{j}]",
                             max_len=15 if want == "coupon_code" else 2000)
    for index, button in enumerate(buttons):
        if _needs_parameter(button) and index not in given:
            kind = str(button.get("type", "")).title().replace("_", " ")
            raise missing(f"buttons: Button at index {index} of type {kind} requires a parameter")


def new_template_fields(body: Any) -> dict[str, Any]:
    """Validate a create request (spec §7.2); return the normalised template fields."""
    body = as_object(body, "(root)")
    allowed = {"name", "language", "category", "components", "parameter_format",
               "allow_category_change", "sub_category", "message_send_ttl_seconds"}
    for key in body:
        if key not in allowed:
            raise invalid(f'Unexpected key "{key}" on param "(root)".')
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise invalid("Param name must be lowercase letters, digits and underscores "
                      "(at most 512 characters).")
    language = body.get("language")
    if not isinstance(language, str) or not language:
        raise invalid("The parameter language is required.")
    category = str(body.get("category") or "").upper()
    if category not in TEMPLATE_CATEGORIES:
        raise invalid(f"Param category must be one of {{{', '.join(TEMPLATE_CATEGORIES)}}}"
                      f" - got \"{body.get('category')}\".")
    parameter_format = str(body.get("parameter_format") or "positional").upper()
    if parameter_format not in ("POSITIONAL", "NAMED"):
        raise invalid("Param parameter_format must be one of {POSITIONAL, NAMED}.")
    components = body.get("components")
    if not isinstance(components, list) or not components:
        raise invalid("The parameter components is required.")
    normalised = []
    for i, comp in enumerate(components):
        c = dict(as_object(comp, f"components[{i}]"))
        c["type"] = str(c.get("type", "")).upper()
        if c["type"] not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            raise invalid(f"Param components[{i}]['type'] must be one of "
                          "{HEADER, BODY, FOOTER, BUTTONS}.")
        if "format" in c:
            c["format"] = str(c["format"]).upper()
        normalised.append(c)
    bodies = [c for c in normalised if c["type"] == "BODY"]
    if len(bodies) != 1 or not isinstance(bodies[0].get("text"), str) or not bodies[0]["text"]:
        raise invalid("A template needs exactly one BODY component with a text.")
    names = placeholders(bodies[0]["text"])
    if parameter_format == "POSITIONAL":
        if names != [str(n) for n in range(1, len(names) + 1)]:
            raise GraphError(100, "Variable parameters must be numbered {{1}}, {{2}}, ... in order.",
                             subcode=2388043)
    elif not all(NAMED_VAR_RE.match(n) for n in names):
        raise GraphError(100, "Named parameters must be lowercase letters, digits and underscores.",
                         subcode=2388043)
    out = {"name": name, "language": language, "category": category,
           "components": normalised, "parameter_format": parameter_format}
    if body.get("sub_category"):
        out["sub_category"] = str(body["sub_category"]).upper()
    return out


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"tpl:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = text.partition(":")
        if prefix != "tpl":
            raise ValueError(text)
        return int(seq)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid(f"Invalid cursor: {cursor!r}") from None


def page(items: list[Template], limit: int, after: str | None,
         before: str | None) -> tuple[list[Template], bool, bool]:
    """One page of `items` (sorted by seq) plus whether pages exist before and after it."""
    if after:
        seq = decode_cursor(after)
        start = next((i for i, t in enumerate(items) if t.seq > seq), len(items))
        chosen = items[start:start + limit]
    elif before:
        seq = decode_cursor(before)
        end = next((i for i, t in enumerate(items) if t.seq >= seq), len(items))
        start = max(0, end - limit)
        chosen = items[start:end]
    else:
        start = 0
        chosen = items[:limit]
    return chosen, start > 0, start + len(chosen) < len(items)
