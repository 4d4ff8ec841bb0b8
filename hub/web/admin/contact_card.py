"""The inbox's contact card: an operator corrects a contact's name or phone (a typo, a
number given in the chat). hub.conversations.contact_details checks and writes it and
tells the CRMs (contact.updated); this is the page and the role check."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from hub.conversations import contact_details
from hub.models import Contact, Conversation
from hub.platform.db import utcnow
from hub.web.admin import bp
from hub.web.admin.auth import OPERATORS, roles
from hub.web.lookups import db, get_or_404

# hub.conversations.contact_details' problems, as the admin says them.
PROBLEMS = {
    "give a name or a phone to change": _l("give a name or a phone to change"),
    "the name cannot be blank": _l("the name cannot be blank"),
    "at most 256 characters": _l("at most 256 characters"),
    "at most 32 characters": _l("at most 32 characters"),
    "not a phone number in international form (+ and the country code)":
        _l("not a phone number in international form (+ and the country code)"),
}


@bp.route("/inbox/<int:conversation_id>/contact", methods=["GET", "POST"])
@roles(*OPERATORS)
def contact_card(conversation_id: int) -> Any:
    with db().scope() as s:
        conversation = get_or_404(s, Conversation, conversation_id)
        contact = s.get(Contact, conversation.contact_id)
        if request.method == "GET":
            return render_template("admin/contact_card.html", c=conversation, contact=contact,
                                   name=contact.name or "", phone=contact.phone or "", errors={})
        name, phone = request.form.get("name", ""), request.form.get("phone", "")
        # A field left as it was, or left empty where the contact has none, is not a change;
        # clearing a phone is, and the check refuses it with its reason.
        given_name = name if name != (contact.name or "") else None
        given_phone = phone if phone != (contact.phone or "") and (phone.strip() or contact.phone) else None
        if given_name is None and given_phone is None:
            flash(_("Nothing changed."), "info")
            return redirect(url_for("admin.conversation", conversation_id=conversation_id))
        errors = {field: str(PROBLEMS.get(problem, problem))
                  for field, problem in contact_details.problems(name=given_name, phone=given_phone).items()}
        if errors:
            return render_template("admin/contact_card.html", c=conversation, contact=contact,
                                   name=name, phone=phone, errors=errors), 422
        changed = contact_details.edit(s, contact, name=given_name, phone=given_phone, now=utcnow())
    if changed:
        flash(_("Contact saved: the CRMs are told of the change."), "success")
    else:
        flash(_("Nothing changed."), "info")
    return redirect(url_for("admin.conversation", conversation_id=conversation_id))
