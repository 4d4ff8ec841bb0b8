"""A contact's tags and custom fields: what the API, the admin and scenarios say about a
person, kept in the hub (contact_tags, contact_fields) so audiences select by them and
templates are filled from them without asking a CRM.

The checks (`check_tag`, `check_field_name`) are for what people type; scenarios store
what their definition says, cut to the columns' width.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.models import ContactField, ContactTag

TAG_MAX = 64
FIELD_NAME_MAX = 64
FIELD_VALUE_MAX = 500
# Letters (any script) and digits first, then also spaces and . : / # & + - _
TAG_PATTERN = re.compile(r"[^\W_][\w .:/#&+-]*")
FIELD_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# The contact row's own fields: templates read them as {"contact": "name"}, not as custom fields.
RESERVED_FIELDS = ("name", "phone")


class AttributeProblem(ValueError):
    """A tag or field a person gave cannot be stored; `field` names it."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def check_tag(tag: Any, *, where: str = "tag") -> str:
    """The tag without spaces around it, or AttributeProblem saying what is wrong."""
    if not isinstance(tag, str) or not tag.strip():
        raise AttributeProblem(f"{where}: a tag is a non-empty text", field=where)
    tag = tag.strip()
    if len(tag) > TAG_MAX:
        raise AttributeProblem(f"{where}: a tag has at most {TAG_MAX} characters", field=where)
    if not TAG_PATTERN.fullmatch(tag):
        raise AttributeProblem(f"{where}: {tag!r} — a tag starts with a letter or digit and holds letters, "
                               "digits, spaces and . : / # & + - _ only", field=where)
    return tag


def check_field_name(name: Any, *, where: str = "field", reserved: bool = True) -> str:
    if not isinstance(name, str) or not FIELD_NAME_PATTERN.fullmatch(name) or len(name) > FIELD_NAME_MAX:
        raise AttributeProblem(f"{where}: a field name is 1-{FIELD_NAME_MAX} of a-z, 0-9 and _, starting with "
                               f"a letter (got {str(name)[:80]!r})", field=where)
    if reserved and name in RESERVED_FIELDS:
        raise AttributeProblem(f"{where}: {name} is the contact's own field, not a custom one", field=where)
    return name


def check_field_value(value: Any, *, where: str = "value") -> str:
    if not isinstance(value, str):
        raise AttributeProblem(f"{where}: a field value is a text", field=where)
    if len(value) > FIELD_VALUE_MAX:
        raise AttributeProblem(f"{where}: a field value has at most {FIELD_VALUE_MAX} characters", field=where)
    return value


def as_text(value: Any) -> str:
    """How a scenario's stored answer (a number, a choice, a text) is kept."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text[:FIELD_VALUE_MAX]


def tags_of(session: Session, contact_id: int) -> list[str]:
    return list(session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == contact_id)
                                .order_by(ContactTag.tag)))


def fields_of(session: Session, contact_id: int) -> dict[str, str]:
    return dict(session.execute(select(ContactField.name, ContactField.value)
                                .where(ContactField.contact_id == contact_id).order_by(ContactField.name)).all())


def change_tags(session: Session, contact_id: int, *, add: Iterable[str] = (), remove: Iterable[str] = (),
                now: datetime) -> list[str]:
    """Remove tags, then add tags; returns the contact's tags."""
    gone = {t[:TAG_MAX] for t in remove}
    wanted = [t[:TAG_MAX] for t in add]
    if gone:
        session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id, ContactTag.tag.in_(gone)))
    have = set(tags_of(session, contact_id))
    for tag in dict.fromkeys(wanted):
        if tag not in have:
            session.add(ContactTag(contact_id=contact_id, tag=tag, created_at=now))
    session.flush()
    return tags_of(session, contact_id)


def change_fields(session: Session, contact_id: int, values: dict[str, Any], *, now: datetime) -> dict[str, str]:
    """Set fields (a value None unsets it); returns the contact's fields."""
    unset = [name[:FIELD_NAME_MAX] for name, value in values.items() if value is None]
    if unset:
        session.execute(delete(ContactField).where(ContactField.contact_id == contact_id,
                                                   ContactField.name.in_(unset)))
    for name, value in values.items():
        if value is None:
            continue
        row = session.get(ContactField, (contact_id, name[:FIELD_NAME_MAX]))
        if row is None:
            session.add(ContactField(contact_id=contact_id, name=name[:FIELD_NAME_MAX], value=as_text(value),
                                     updated_at=now))
        else:
            row.value, row.updated_at = as_text(value), now
    session.flush()
    return fields_of(session, contact_id)


def fields_of_contacts(session: Session, contact_ids: Iterable[int], names: Iterable[str]) -> dict[int, dict[str, str]]:
    """{contact id: {name: value}} for many contacts at once (a broadcast's audience)."""
    ids, wanted = sorted(set(contact_ids)), sorted(set(names))
    out: dict[int, dict[str, str]] = defaultdict(dict)
    if not wanted:
        return out
    for start in range(0, len(ids), 1000):
        for contact_id, name, value in session.execute(
                select(ContactField.contact_id, ContactField.name, ContactField.value)
                .where(ContactField.contact_id.in_(ids[start:start + 1000]), ContactField.name.in_(wanted))):
            out[contact_id][name] = value
    return out
