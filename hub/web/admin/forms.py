"""HTML forms from marshmallow schemas: the same field metadata (label, help, secret,
choices, placeholder) that drives the API's form description drives the admin's inputs.

`read_form` turns a submitted form into the data a service validates (blank secrets are
left out, so the service keeps the stored value); `fields_for` builds what the template
macro renders, with each error beside its field. Secret values are never put back into
a page: an input for a secret is always empty and only says whether one is stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any, Iterable, Mapping

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, missing
from werkzeug.datastructures import MultiDict

from hub.crm.settings_form import describe_settings

SCHEMA_ERRORS = "_schema"


@dataclass
class FormField:
    name: str
    type: str  # string, url, email, integer, number, boolean, list, mapping
    label: str
    help: str = ""
    required: bool = False
    secret: bool = False
    placeholder: str = ""
    choices: list[tuple[str, str]] | None = None
    value: str = ""  # what the input shows (never a secret)
    checked: bool = False
    is_set: bool = False  # a secret is stored
    errors: list[str] = dc_field(default_factory=list)
    allow_blank_choice: bool = True
    value_choices: list[tuple[str, str]] | None = None  # for list/mapping fields: known values
    id_prefix: str = ""  # two forms on one page keep their element ids apart
    multiline: bool = False  # a string field holding several lines (rules, mappings)

    @property
    def dom_id(self) -> str:
        return self.id_prefix + self.name

    @property
    def widget(self) -> str:
        if self.secret:
            return "password"
        if self.type == "boolean":
            return "checkbox"
        if self.choices is not None:
            return "select"
        if self.type in ("list", "mapping") or self.multiline:
            return "textarea"
        if self.type in ("integer", "number"):
            return "number"
        return {"url": "url", "email": "email"}.get(self.type, "text")


def normalise_choices(choices: Iterable[Any] | None) -> list[tuple[str, str]] | None:
    """Choices as (value, label) pairs: metadata may give plain values or pairs."""
    if choices is None:
        return None
    out = []
    for choice in choices:
        if isinstance(choice, (list, tuple)) and len(choice) == 2:
            out.append((str(choice[0]), str(choice[1])))
        else:
            out.append((str(choice), str(choice)))
    return out


def _declared(schema: type[Schema]) -> dict[str, fields.Field]:
    return dict(schema._declared_fields)


def hidden_fields(schema: type[Schema]) -> set[str]:
    """Fields the hub manages itself (metadata managed=True): never in the form."""
    return {name for name, f in _declared(schema).items() if f.metadata.get("managed")}


def display_value(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "list":
        return "\n".join(str(v) for v in value)
    if kind == "mapping":
        return "\n".join(f"{k} = {v}" for k, v in dict(value).items())
    if kind == "boolean":
        return "on" if value else ""
    return str(value)


def flatten_errors(messages: Any) -> dict[str, list[str]]:
    """marshmallow's nested error messages as {field: [text, ...]}."""
    out: dict[str, list[str]] = {}

    def walk(value: Any, prefix: str = "") -> list[str]:
        if isinstance(value, str):
            return [f"{prefix}{value}"]
        if isinstance(value, list):
            return [text for item in value for text in walk(item, prefix)]
        if isinstance(value, dict):
            texts = []
            for key, sub in value.items():
                label = "" if key in ("key", "value", SCHEMA_ERRORS) else f"{key}: "
                texts.extend(walk(sub, prefix + label))
            return texts
        return [f"{prefix}{value}"]

    if isinstance(messages, dict):
        for name, value in messages.items():
            out.setdefault(str(name), []).extend(walk(value))
    else:
        out.setdefault(SCHEMA_ERRORS, []).extend(walk(messages))
    return out


def read_form(
    schema: type[Schema],
    form: MultiDict,
    *,
    creating: bool,
    skip: Iterable[str] = (),
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The submitted values, shaped for the schema; and errors found before validation
    (a required field left blank, a mapping line without '=')."""
    skip = set(skip) | hidden_fields(schema)
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for spec in describe_settings(schema):
        name, kind = spec["name"], spec["type"]
        if name in skip:
            continue
        declared = _declared(schema)[name]
        raw = form.get(name, "")
        if kind == "boolean":
            data[name] = name in form
            continue
        if spec["secret"]:
            if raw:
                data[name] = raw
            elif creating and spec["required"]:
                errors[name] = [str(_l("Required."))]
            continue
        if kind == "list":
            data[name] = [line.strip() for line in raw.splitlines() if line.strip()]
            continue
        if kind == "mapping":
            mapping: dict[str, str] = {}
            for number, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                key, sep, value = line.partition("=")
                if not sep or not key.strip():
                    errors.setdefault(name, []).append(
                        str(_l("Line %(n)s: write key = value.", n=number)))
                    continue
                mapping[key.strip()] = value.strip()
            data[name] = mapping
            continue
        value = raw.strip()
        if value == "":
            if spec["required"]:
                errors[name] = [str(_l("Required."))]
            elif declared.allow_none:
                data[name] = None
            elif kind == "string":
                data[name] = ""
            # other kinds: left out, so the schema's default applies
            continue
        data[name] = value
    return data, errors


def load_form(schema: type[Schema], form: MultiDict) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A form that creates something, read and validated by its schema: the loaded
    values, or the errors to show beside their fields."""
    data, errors = read_form(schema, form, creating=True)
    if errors:
        return {}, errors
    try:
        return schema().load(data), {}
    except ValidationError as exc:
        return {}, flatten_errors(exc.messages)


def _default(field: fields.Field) -> Any:
    """What a new form shows: the schema's default, computed when it is a factory (a
    list of tags, a mapping of fields), so saving an untouched form keeps it."""
    default = field.load_default
    if default is missing:
        return None
    return default() if callable(default) else default


def fields_for(
    schema: type[Schema],
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    stored_secrets: Iterable[str] = (),
    loaded_choices: Mapping[str, list[tuple[str, str]]] | None = None,
    skip: Iterable[str] = (),
    submitted: bool = False,
    id_prefix: str = "",
) -> list[FormField]:
    """Form fields to render. `values` are plain (non-secret) values: stored settings,
    or what the user just submitted (`submitted`); secrets never get a value."""
    values = values or {}
    errors = errors or {}
    stored = set(stored_secrets)
    loaded_choices = loaded_choices or {}
    skip = set(skip) | hidden_fields(schema)
    out = []
    for spec in describe_settings(schema):
        name, kind = spec["name"], spec["type"]
        if name in skip:
            continue
        declared = _declared(schema)[name]
        choices = normalise_choices(spec["choices"])
        value_choices = None
        if name in loaded_choices:
            if kind in ("list", "mapping"):
                value_choices = normalise_choices(loaded_choices[name])
            else:
                choices = normalise_choices(loaded_choices[name])
        raw = values.get(name, _default(declared))
        if kind == "boolean" and submitted:
            raw = name in values
        if spec["secret"]:
            text = ""
        elif isinstance(raw, str):
            text = raw  # as typed
        else:
            text = display_value(kind, raw)
        if choices is not None and text and text not in {v for v, _ in choices}:
            choices = [(text, text)] + choices  # keep a stored value the service no longer lists
        out.append(FormField(
            name=name, type=kind, label=spec["label"], help=spec["help"], required=spec["required"],
            secret=spec["secret"], placeholder=spec["placeholder"], choices=choices, value=text,
            checked=bool(raw) if kind == "boolean" else False, is_set=name in stored,
            errors=list(errors.get(name, [])),
            allow_blank_choice=not spec["required"] and (declared.allow_none or _default(declared) in (None, "")),
            value_choices=value_choices, id_prefix=id_prefix, multiline=spec.get("multiline", False),
        ))
    return out


def with_other_errors(pre: dict[str, list[str]], validate: Any) -> dict[str, list[str]]:
    """Errors found before validation plus the service's own for the other fields, so
    one round shows everything wrong at once. `validate()` returns marshmallow messages."""
    found = flatten_errors(validate() or {})
    return {**{k: v for k, v in found.items() if k not in pre}, **pre}


def submitted_values(form: MultiDict) -> dict[str, str]:
    """What the user typed, to show again after an error (secrets are never shown)."""
    return {k: v for k, v in form.items() if k != "csrf_token"}
