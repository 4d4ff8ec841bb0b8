"""Merging a conversation's contact with another contact of the same person (the inbox's
"Merge with…"), and undoing a merge: hub.conversations.persons does the linking; this is the page, the
search and the role check. Conversations never move, so undo restores both exactly."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select

from hub.platform.db import utcnow
from hub.models import Contact, Conversation
from hub.models.contacts import ContactMerge
from hub.conversations.persons import OPERATOR, MergeRefused, link, person_of, undo
from hub.web.admin import bp
from hub.web.admin.auth import OPERATORS, roles
from hub.web.lookups import db, get_or_404

FOUND = 20
# hub.conversations.persons' refusals, as the admin says them.
REFUSALS = {
    "these contacts are already one person": _l("these contacts are already one person"),
    "this merge was undone before": _l("this merge was undone before"),
    "the contact was linked elsewhere since; undo that merge first":
        _l("the contact was merged elsewhere since; undo that merge first"),
}


def _refusal(exc: MergeRefused) -> str:
    return str(REFUSALS.get(str(exc), str(exc)))


def _conversation_contact(s: Any, conversation_id: int) -> tuple[Conversation, Contact]:
    conversation = get_or_404(s, Conversation, conversation_id)
    return conversation, s.get(Contact, conversation.contact_id)


def search(s: Any, contact: Contact, text: str) -> list[Contact]:
    """Contacts named, phoned or @-named like `text`, other than this contact's person."""
    text = text.strip()[:100]
    if not text:
        return []
    like = f"%{text.replace('%', '').replace('_', '')}%"
    person = person_of(contact)
    rows = s.scalars(select(Contact).where(
        or_(Contact.name.ilike(like), Contact.phone.ilike(like), Contact.username.ilike(like),
            Contact.wa_id.ilike(like)),
        Contact.id != person, or_(Contact.person_id.is_(None), Contact.person_id != person))
        .order_by(Contact.name, Contact.id).limit(FOUND)).all()
    return [c for c in rows if c.id != contact.id]


@bp.app_template_global()
def person_panel(contact_id: int) -> dict[str, Any]:
    """What the contact panel shows of the contact's person: the other contacts of it
    and the merges that can be undone."""
    with db().scope() as s:
        contact = s.get(Contact, contact_id)
        person = person_of(contact)
        others = s.scalars(select(Contact).where(or_(Contact.id == person, Contact.person_id == person),
                                                 Contact.id != contact_id).order_by(Contact.id)).all()
        merges = s.scalars(select(ContactMerge).where(ContactMerge.person_id == person,
                                                      ContactMerge.undone_at.is_(None))
                           .order_by(ContactMerge.id.desc())).all()
        names = {c.id: c.name or c.phone or c.username or c.user_id for c in [contact, *others]}
        view = {"others": [{"id": c.id, "label": names[c.id], "phone": c.phone, "user_id": c.user_id}
                           for c in others],
                "merges": [{"id": m.id, "label": names.get(m.contact_id, f"#{m.contact_id}"),
                            "reason": m.reason, "at": m.merged_at} for m in merges]}
        s.expunge_all()
        return view


@bp.route("/inbox/<int:conversation_id>/merge", methods=["GET", "POST"])
@roles(*OPERATORS)
def contact_merge(conversation_id: int) -> Any:
    with db().scope() as s:
        conversation, contact = _conversation_contact(s, conversation_id)
        if request.method == "POST":
            target_id = request.form.get("contact_id", "")
            other = s.get(Contact, int(target_id)) if target_id.isdigit() else None
            if other is None:
                flash(_("Choose a contact to merge with."), "error")
                return redirect(url_for("admin.contact_merge", conversation_id=conversation_id))
            try:
                link(s, contact, other, reason=OPERATOR, now=utcnow(), author_id=current_user.id)
            except MergeRefused as exc:
                flash(_("Not merged: %(why)s", why=_refusal(exc)), "error")
                return redirect(url_for("admin.conversation", conversation_id=conversation_id))
            flash(_("Merged: both contacts are now one person; the CRMs get one contact."), "success")
            return redirect(url_for("admin.conversation", conversation_id=conversation_id))
        query = request.args.get("q", "")
        found = search(s, contact, query)
        return render_template("admin/contact_merge.html", c=conversation, contact=contact, q=query,
                               found=found)


@bp.post("/inbox/<int:conversation_id>/merges/<int:merge_id>/undo")
@roles(*OPERATORS)
def contact_merge_undo(conversation_id: int, merge_id: int) -> Any:
    with db().scope() as s:
        merge = get_or_404(s, ContactMerge, merge_id)
        try:
            undo(s, merge, now=utcnow(), by_id=current_user.id)
        except MergeRefused as exc:
            flash(_("Not undone: %(why)s", why=_refusal(exc)), "error")
        else:
            flash(_("Merge undone: the contacts are apart again, as before."), "success")
    return redirect(url_for("admin.conversation", conversation_id=conversation_id))
