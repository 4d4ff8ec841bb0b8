"""Segments: audiences described by a filter over contacts, their conversations, tags,
custom fields and CRM stages, evaluated when a broadcast is made (so a contact who wrote
yesterday is in it today).

Filter keys (all optional, all must hold):
  channel_id                    the contact has a conversation on this channel
  lead_source                   a conversation's lead source kind (direct, tracked_link, ctwa_ad, ...)
  utm_source, utm_campaign      ... or one of its tags (all on the same conversation)
  last_message_within_days      the customer's last message is at most N days old
  last_message_older_than_days  ... or more than N days old (or they never wrote)
  name_contains                 the contact's name (any case)
  phone_prefix                  the E.164 number starts with this (a country: "+7")
  tag                           the contact has this tag
  tags_any                      the contact has at least one of these tags (a list)
  field                         a custom field: {"name": "city", "equals": "Berlin"}, or
                                {"name": "city"} for "is set"; a list of them must all hold
  crm_stage                     the stage the connector last reported for the contact's deal,
                                by id or name: "won", or {"stage": "won", "pipeline": "sales"}

The person filters (lead source and UTM tags, last message, tags, fields, CRM stage) hold
when ANY contact of the contact's person holds them (contacts linked across channels,
hub.conversations.persons): a tag set on the Telegram contact selects the person's
WhatsApp number. A person is in a segment once, by its first contact with a number.

Every filter is a condition of the one SELECT (EXISTS over the table that holds it), so
a segment of any size is counted and read by the database, not by a loop over contacts.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from hub.conversations.tags_and_fields import (FIELD_VALUE_MAX, AttributeProblem, check_field_name,
                                               check_field_value, check_tag)
from hub.models import Contact, ContactCrmStage, ContactField, ContactTag, Conversation

TAGS, FIELD, STAGE = "tags", "field", "stage"
KEYS: dict[str, Any] = {"channel_id": int, "lead_source": str, "utm_source": str, "utm_campaign": str,
                        "last_message_within_days": int, "last_message_older_than_days": int,
                        "name_contains": str, "phone_prefix": str, "tag": str, "tags_any": TAGS,
                        "field": FIELD, "crm_stage": STAGE}
TAGS_ANY_MAX = 50
FIELDS_MAX = 10
SOURCE_KEYS = ("lead_source", "utm_source", "utm_campaign")


class SegmentProblem(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def _tag(value: Any, where: str) -> str:
    try:
        return check_tag(value, where=where)
    except AttributeProblem as exc:
        raise SegmentProblem(str(exc), field=exc.field) from None


def _field_condition(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise SegmentProblem(f'{where} must be an object: {{"name": "city", "equals": "Berlin"}} or '
                             f'{{"name": "city"}} for "is set"', field=where)
    unknown = sorted(set(value) - {"name", "equals"})
    if unknown:
        raise SegmentProblem(f"{where}: unknown key {unknown[0]!r}; known: equals, name", field=f"{where}.{unknown[0]}")
    try:
        out = {"name": check_field_name(value.get("name"), where=f"{where}.name")}
        if "equals" in value:
            out["equals"] = check_field_value(value["equals"], where=f"{where}.equals")
    except AttributeProblem as exc:
        raise SegmentProblem(str(exc), field=exc.field) from None
    return out


def _stage(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        value = {"stage": value}
    if not isinstance(value, dict):
        raise SegmentProblem(f'{where} must be a stage\'s id or name, or {{"stage": "...", "pipeline": "..."}}',
                             field=where)
    unknown = sorted(set(value) - {"stage", "pipeline"})
    if unknown:
        raise SegmentProblem(f"{where}: unknown key {unknown[0]!r}; known: pipeline, stage",
                             field=f"{where}.{unknown[0]}")
    out = {}
    for key, width in (("stage", 200), ("pipeline", 64)):
        if key not in value:
            continue
        text = value[key]
        if not isinstance(text, str) or not text.strip() or len(text.strip()) > width:
            raise SegmentProblem(f"{where}.{key} must be a non-empty text of at most {width} characters",
                                 field=f"{where}.{key}")
        out[key] = text.strip()
    if "stage" not in out:
        raise SegmentProblem(f"{where}.stage is required: the stage's id or name", field=f"{where}.stage")
    return out


def _unstorable(value: Any, where: str) -> str | None:
    """The path of a text no database column can hold (a NUL, a lone surrogate), if any."""
    if isinstance(value, str):
        return where if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value) else None
    if isinstance(value, dict):
        return next((p for k, v in value.items() if (p := _unstorable(v, f"{where}.{k}"))), None)
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _unstorable(v, f"{where}[{i}]"))), None)
    return None


def validate(segment: Any) -> dict[str, Any]:
    """The filter, checked and normalised: unknown keys and wrong types are refused by name
    (`field` is the path of the part at fault: "tags_any[1]", "field[0].name")."""
    if not isinstance(segment, dict):
        raise SegmentProblem("a segment is an object of filters", field="segment")
    out: dict[str, Any] = {}
    for key, value in segment.items():
        bad = _unstorable(value, key)
        if bad is not None:
            raise SegmentProblem(f"{bad} holds a character no text may hold (NUL or a lone surrogate)", field=bad)
        kind = KEYS.get(key)
        if kind is None:
            raise SegmentProblem(f"unknown segment filter {key!r}; known: {', '.join(sorted(KEYS))}", field=key)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SegmentProblem(f"{key} must be a whole number >= 0", field=key)
        if kind is str:
            if not isinstance(value, str) or not value.strip():
                raise SegmentProblem(f"{key} must be a non-empty text", field=key)
            value = _tag(value, key) if key == "tag" else value
        if kind == TAGS:
            if not isinstance(value, list) or not value or len(value) > TAGS_ANY_MAX:
                raise SegmentProblem(f"{key} must be a list of 1-{TAGS_ANY_MAX} tags", field=key)
            value = list(dict.fromkeys(_tag(t, f"{key}[{i}]") for i, t in enumerate(value)))
        if kind == FIELD:
            many = value if isinstance(value, list) else [value]
            if not many or len(many) > FIELDS_MAX:
                raise SegmentProblem(f"{key} must be one condition or a list of 1-{FIELDS_MAX}", field=key)
            value = [_field_condition(v, f"{key}[{i}]" if isinstance(value, list) else key)
                     for i, v in enumerate(many)]
        if kind == STAGE:
            value = _stage(value, key)
        out[key] = value
    return out


def check_known(session: Session, segment: dict[str, Any]) -> dict[str, Any]:
    """`validate`, and the fields and the CRM stage it names must be known to the hub (some
    contact has that field; some connector reported that stage), so a typo is refused
    rather than saved as a segment nobody can ever match."""
    listed = isinstance(segment, dict) and isinstance(segment.get("field"), list)
    segment = validate(segment)
    conditions = segment.get("field") or []
    names = {c["name"] for c in conditions}
    known = set(session.scalars(select(ContactField.name).where(ContactField.name.in_(names)).distinct())) \
        if names else set()
    for i, condition in enumerate(conditions):
        if condition["name"] not in known:
            where = f"field[{i}].name" if listed else "field.name"
            raise SegmentProblem(f"{where}: no contact has a field named {condition['name']!r}", field=where)
    if "crm_stage" in segment:
        wanted = segment["crm_stage"]
        query = select(ContactCrmStage.contact_id).where(_stage_is(wanted)).limit(1)
        if session.scalar(query) is None:
            pipeline = f" in pipeline {wanted['pipeline']!r}" if "pipeline" in wanted else ""
            raise SegmentProblem(f"crm_stage.stage: no connector has reported a stage {wanted['stage']!r}{pipeline}",
                                 field="crm_stage.stage")
    return segment


def _stage_is(wanted: dict[str, str]) -> Any:
    stage = wanted["stage"]
    condition = or_(ContactCrmStage.stage == stage[:64], ContactCrmStage.stage_name == stage)
    if "pipeline" in wanted:
        return condition & (ContactCrmStage.pipeline == wanted["pipeline"])
    return condition


PERSON = func.coalesce(Contact.person_id, Contact.id)


def _of_person(contact_id: Any) -> Any:
    """`contact_id` is one of the contacts of the selected contact's person (the canonical
    contact or one naming it: person_id is never a chain)."""
    other = aliased(Contact)
    person = select(other.id).where(or_(other.id == PERSON, other.person_id == PERSON))
    return contact_id.in_(person.correlate(Contact).scalar_subquery())


def query(segment: dict[str, Any], *, now: datetime) -> Select:
    """The SELECT of (id, wa_id, name, person) of the contacts matching a validated segment,
    by id; contacts without a phone (username-only) cannot get a template and are left out."""
    last_inbound = (select(func.max(Conversation.last_inbound_at)).where(_of_person(Conversation.contact_id))
                    .correlate(Contact).scalar_subquery())
    q = (select(Contact.id, Contact.wa_id, Contact.name, PERSON.label("person"))
         .join(Conversation, Conversation.contact_id == Contact.id)
         .where(Contact.wa_id.is_not(None)).group_by(Contact.id, Contact.wa_id, Contact.name, Contact.person_id)
         .order_by(Contact.id))
    if "channel_id" in segment:
        q = q.where(Conversation.channel_id == segment["channel_id"])
    if "name_contains" in segment:
        q = q.where(func.lower(Contact.name).contains(segment["name_contains"].lower(), autoescape=True))
    if "phone_prefix" in segment:
        q = q.where(Contact.wa_id.startswith(segment["phone_prefix"].lstrip("+"), autoescape=True))
    if "last_message_within_days" in segment:
        q = q.where(last_inbound >= now - timedelta(days=segment["last_message_within_days"]))
    if "last_message_older_than_days" in segment:
        cut = now - timedelta(days=segment["last_message_older_than_days"])
        q = q.where(or_(last_inbound.is_(None), last_inbound < cut))
    if SOURCE_KEYS[0] in segment or SOURCE_KEYS[1] in segment or SOURCE_KEYS[2] in segment:
        source = Conversation.__table__.alias("source")
        where = [_of_person(source.c.contact_id)]
        if "channel_id" in segment:
            where.append(source.c.channel_id == segment["channel_id"])
        for key in SOURCE_KEYS:
            if key in segment:
                where.append(source.c.lead_source[key if key != "lead_source" else "kind"].as_string()
                             == segment[key])
        q = q.where(exists().where(*where))
    if "tag" in segment:
        q = q.where(exists().where(_of_person(ContactTag.contact_id), ContactTag.tag == segment["tag"]))
    if "tags_any" in segment:
        q = q.where(exists().where(_of_person(ContactTag.contact_id), ContactTag.tag.in_(segment["tags_any"])))
    for condition in segment.get("field") or []:
        value = (ContactField.value == condition["equals"][:FIELD_VALUE_MAX]) if "equals" in condition \
            else (ContactField.value != "")
        q = q.where(exists().where(_of_person(ContactField.contact_id), ContactField.name == condition["name"],
                                   value))
    if "crm_stage" in segment:
        q = q.where(exists().where(_of_person(ContactCrmStage.contact_id), _stage_is(segment["crm_stage"])))
    return q


def evaluate(session: Session, segment: dict[str, Any], *, now: datetime) -> list[dict[str, Any]]:
    """[{"contact_id", "phone", "variables"}] of the contacts matching, ordered by contact id:
    one per person (its first contact with a number) and per number."""
    out, seen = [], set()
    for r in session.execute(query(validate(segment), now=now)):
        if r.person in seen:
            continue
        seen.add(r.person)
        out.append({"contact_id": r.id, "phone": f"+{r.wa_id}", "variables": {"name": r.name or ""}})
    return out


def count(session: Session, segment: dict[str, Any], *, now: datetime) -> int:
    """How many people the segment matches now (what `evaluate` returns), counted by the database."""
    matching = query(validate(segment), now=now).order_by(None).subquery()
    return int(session.scalar(select(func.count(matching.c.person.distinct()))) or 0)
