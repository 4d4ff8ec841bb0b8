"""Describe a connector's Settings schema as form fields (the API and the admin form)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, missing, validate

_TYPES = [
    (fields.Boolean, "boolean"),
    (fields.Integer, "integer"),
    (fields.Float, "number"),
    (fields.Url, "url"),
    (fields.Email, "email"),
    (fields.List, "list"),
    (fields.Dict, "mapping"),
    (fields.String, "string"),
]


def _type_name(field: fields.Field) -> str:
    for cls, name in _TYPES:
        if isinstance(field, cls):
            return name
    return "string"


def _choices(field: fields.Field) -> list[Any] | None:
    if "choices" in field.metadata:
        return list(field.metadata["choices"])
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return list(validator.choices)
    return None


def describe_settings(schema: type[Schema]) -> list[dict[str, Any]]:
    out = []
    for name, field in schema._declared_fields.items():
        meta = field.metadata
        default = field.load_default
        out.append({
            "name": name,
            "type": _type_name(field),
            "required": field.required,
            "label": meta.get("label", name.replace("_", " ").capitalize()),
            "help": meta.get("help", ""),
            "secret": bool(meta.get("secret")),
            "multiline": bool(meta.get("multiline")),  # several lines of text (rules, mappings)
            "placeholder": meta.get("placeholder", ""),
            "choices": _choices(field),
            "default": None if callable(default) or default is missing else default,
        })
    return out
