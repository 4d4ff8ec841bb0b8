"""/api/v1/contacts: merging a contact with another contact of the same person, and
undoing the merge (hub.conversations.persons), as the inbox's "Merge with…" does."""
from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields

from hub.platform.db import utcnow
from hub.models import Contact
from hub.models.contacts import ContactMerge
from hub.conversations.persons import OPERATOR, MergeRefused, link, undo
from hub.web.api.auth import authenticate, require_role
from hub.web.api.fields import Id
from hub.web.api.parsing import Blueprint

blp = Blueprint("contacts", __name__, url_prefix="/contacts",
                description="Contacts: merge two contacts into one person, undo a merge.")
blp.before_request(authenticate)


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


def _contact(session: Any, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        abort(404, message=f"no contact with id {contact_id}")
    return contact


def _out(merge: ContactMerge) -> dict[str, Any]:
    return {"id": merge.id, "contact_id": merge.contact_id, "person_id": merge.person_id, "reason": merge.reason,
            "merged_at": merge.merged_at, "undone_at": merge.undone_at}


@blp.route("/<id:contact_id>/merge")
class Merge(MethodView):
    @require_role("admin", "operator")
    @blp.arguments(MergeIn)
    @blp.response(201, MergeOut)
    def post(self, body: dict[str, Any], contact_id: int):
        """This contact (and the contacts linked to it) become the other contact's person."""
        with current_app.extensions["hub"].db.scope() as session:
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
        with current_app.extensions["hub"].db.scope() as session:
            merge = session.get(ContactMerge, merge_id)
            if merge is None or contact_id not in (merge.contact_id, merge.person_id):
                abort(404, message=f"contact {contact_id} has no merge {merge_id}")
            try:
                undo(session, merge, now=utcnow(), by_id=g.api_user["id"])
            except MergeRefused as exc:
                abort(409, message=str(exc))
            return _out(merge)
