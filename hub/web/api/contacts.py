"""/api/v1/contacts: an operator's edit of a contact's name and phone (contact.updated
tells the CRMs), a contact's tags, custom fields and CRM stages (what audiences select
by and templates are filled from), and merging a contact with another contact of the
same person, and undoing the merge (hub.conversations.persons), as the inbox's "Merge
with…" does."""
from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.platform.db import utcnow
from hub.models import Contact
from hub.models.contacts import ContactMerge
from hub.conversations import tags_and_fields as attrs
from hub.conversations.persons import OPERATOR, MergeRefused, link, undo
from hub.conversations import contact_details
from hub.crm import contact_stages
from hub.web.api.auth import authenticate, require_role
from hub.web.api.fields import Id, Text
from hub.web.api.parsing import Blueprint
from hub.web.lookups import api_get_or_404, db

blp = Blueprint("contacts", __name__, url_prefix="/contacts",
                description="Contacts: tags, custom fields and CRM stages; merge two contacts into one person, "
                            "undo a merge.")
blp.before_request(authenticate)


class ContactIn(Schema):
    name = Text(contact_details.NAME_MAX, metadata={"description": "the contact's name as operators and the CRM see it"})
    phone = Text(contact_details.PHONE_MAX, metadata={
        "description": "a phone in international form, e.g. +4915100000001"})

    @validates_schema
    def _a_readable_change(self, data: dict[str, Any], **_: Any) -> None:
        found = contact_details.problems(name=data.get("name"), phone=data.get("phone"))
        if found:
            raise ValidationError(found)


class ContactOut(Schema):
    id = fields.Integer()
    name = fields.String()
    phone = fields.String(allow_none=True)
    username = fields.String(allow_none=True)
    wa_id = fields.String(allow_none=True)
    user_id = fields.String(allow_none=True)
    person_id = fields.Integer(allow_none=True)


class MergeIn(Schema):
    person_contact_id = Id(Contact, required=True, metadata={
        "description": "A contact of the person to merge into (its person becomes this contact's)"})


class MergeOut(Schema):
    id = fields.Integer()
    contact_id = fields.Integer()
    person_id = fields.Integer(metadata={"description": "The person's canonical contact"})
    reason = fields.String(metadata={"description": "operator or shared_phone"})
    merged_at = fields.DateTime()
    undone_at = fields.DateTime(allow_none=True)


def _checked(check: Any):
    """A marshmallow validator from one of tags_and_fields' checks."""
    def run(value: Any) -> None:
        try:
            check(value)
        except attrs.AttributeProblem as exc:
            raise ValidationError(str(exc).split(": ", 1)[-1]) from None
    return run


class TagsIn(Schema):
    add = fields.List(Text(attrs.TAG_MAX, validate=_checked(attrs.check_tag)), load_default=list,
                      validate=validate.Length(max=100), metadata={"description": "tags to add (at most 100)"})
    remove = fields.List(Text(attrs.TAG_MAX, validate=_checked(attrs.check_tag)), load_default=list,
                         validate=validate.Length(max=100), metadata={"description": "tags to remove"})

    @validates_schema
    def _both(self, data: dict[str, Any], **_: Any) -> None:
        both = {t.strip() for t in data.get("add", [])} & {t.strip() for t in data.get("remove", [])}
        if both:
            raise ValidationError(f"a tag cannot be added and removed at once: {', '.join(sorted(both))}",
                                  field_name="remove")
        if not data.get("add") and not data.get("remove"):
            raise ValidationError("give tags to add or to remove", field_name="add")


class FieldsIn(Schema):
    values = fields.Dict(data_key="fields",
        keys=Text(attrs.FIELD_NAME_MAX, validate=_checked(attrs.check_field_name)),
        values=Text(attrs.FIELD_VALUE_MAX, allow_none=True), required=True,
        validate=validate.Length(1, 100), metadata={
            "description": 'custom fields to set, by name ("city": "Berlin"); null unsets one; 1-100 at once'})


class CrmStageOut(Schema):
    pipeline = fields.String(allow_none=True)
    stage = fields.String()
    stage_name = fields.String()
    outcome = fields.String(metadata={"description": "open, won or lost"})
    deal_id = fields.String()
    changed_at = fields.DateTime()


class AttributesOut(Schema):
    contact_id = fields.Integer()
    tags = fields.List(fields.String())
    custom_fields = fields.Dict(keys=fields.String(), values=fields.String(), data_key="fields")
    crm_stages = fields.List(fields.Nested(CrmStageOut), metadata={
        "description": "the contact's stage in each CRM pipeline, as the connector last reported it"})


def _attributes(session: Any, contact_id: int) -> dict[str, Any]:
    return {"contact_id": contact_id, "tags": attrs.tags_of(session, contact_id),
            "custom_fields": attrs.fields_of(session, contact_id),
            "crm_stages": contact_stages.of_contact(session, contact_id)}


def _contact(session: Any, contact_id: int) -> Contact:
    return api_get_or_404(session, Contact, contact_id, "contact")


def _out(merge: ContactMerge) -> dict[str, Any]:
    return {"id": merge.id, "contact_id": merge.contact_id, "person_id": merge.person_id, "reason": merge.reason,
            "merged_at": merge.merged_at, "undone_at": merge.undone_at}


@blp.route("/<id:contact_id>")
class ContactItem(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(ContactIn)
    @blp.response(200, ContactOut)
    def patch(self, body: dict[str, Any], contact_id: int):
        """Change the contact's name or phone, as the inbox's contact card does; the CRM
        connectors hear of it (contact.updated) when something really changed."""
        with db().scope() as session:
            contact = _contact(session, contact_id)
            contact_details.edit(session, contact, name=body.get("name"), phone=body.get("phone"), now=utcnow())
            return contact


@blp.route("/<id:contact_id>/merge")
class Merge(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(MergeIn)
    @blp.response(201, MergeOut)
    def post(self, body: dict[str, Any], contact_id: int):
        """This contact (and the contacts linked to it) become the other contact's person."""
        with db().scope() as session:
            contact = _contact(session, contact_id)
            other = _contact(session, body["person_contact_id"])
            try:
                merge = link(session, contact, other, reason=OPERATOR, now=utcnow(), author_id=g.api_user["id"])
            except MergeRefused as exc:
                abort(409, message=str(exc))
            return _out(merge)


@blp.route("/<id:contact_id>/merges/<id:merge_id>")
class MergeItem(MethodView):
    @require_role("admin", "operator")
    @blp.response(200, MergeOut)
    def delete(self, contact_id: int, merge_id: int):
        """Undo the merge: both contacts as they were before it."""
        with db().scope() as session:
            merge = session.get(ContactMerge, merge_id)
            if merge is None or contact_id not in (merge.contact_id, merge.person_id):
                abort(404, message=f"contact {contact_id} has no merge {merge_id}")
            try:
                undo(session, merge, now=utcnow(), by_id=g.api_user["id"])
            except MergeRefused as exc:
                abort(409, message=str(exc))
            return _out(merge)


@blp.route("/<id:contact_id>/attributes")
class Attributes(MethodView):
    @blp.response(200, AttributesOut)
    def get(self, contact_id: int):
        """The contact's tags, custom fields and CRM stages."""
        with db().scope() as session:
            _contact(session, contact_id)
            return _attributes(session, contact_id)


@blp.route("/<id:contact_id>/tags")
class Tags(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(TagsIn)
    @blp.response(200, AttributesOut)
    def post(self, body: dict[str, Any], contact_id: int):
        """Add and remove tags; answers the contact's tags, fields and stages."""
        with db().scope() as session:
            _contact(session, contact_id)
            attrs.change_tags(session, contact_id, add=[t.strip() for t in body["add"]],
                              remove=[t.strip() for t in body["remove"]], now=utcnow())
            return _attributes(session, contact_id)


@blp.route("/<id:contact_id>/fields")
class Fields(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(FieldsIn)
    @blp.response(200, AttributesOut)
    def patch(self, body: dict[str, Any], contact_id: int):
        """Set custom fields (null unsets one); answers the contact's tags, fields and stages."""
        with db().scope() as session:
            _contact(session, contact_id)
            attrs.change_fields(session, contact_id, body["values"], now=utcnow())
            return _attributes(session, contact_id)
