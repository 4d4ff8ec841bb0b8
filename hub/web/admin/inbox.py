"""The operators' inbox: conversations (mine, unassigned, open, window closing soon,
closed), a thread with media, lead source and CRM links, replies inside the 24-hour
window, templates (with a variables form and a preview) when it is closed, assign and
close; routing's queue views (queued for my teams, breaching the SLA soon) and transfers
to an operator or a team. Sending only queues the message: workers send it under the
number's limits."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, false, func, or_, select

from connectors.base import registry
from hub.channels.media import MediaUnavailable, fetch_media
from hub.channels import registry as channel_kinds
from hub.channels.base import Outgoing, SendRefused, WindowClosed
from hub.channels.sending import queue
from hub.conversations.actions import assign, close
from hub.platform.db import utcnow
from hub.models import Channel, ConnectorRecord, Contact, Conversation, CrmLink, Message, Team, Template, User
from hub.routing import engine
from hub.web.admin import automation_log, bp, inbox_queues, template_form
from hub.web.admin.auth import OPERATORS, roles
from hub.web.admin.routing_forms import REASONS
from hub.web.lookups import current_runtime, db, get_or_404

PAGE = 50
VIEWS = {
    "open": _l("Open"),
    "mine": _l("Mine"),
    "unassigned": _l("Unassigned"),
    "closing": _l("Window closing soon"),
    "queued": _l("Queued for my teams"),
    "breaching": _l("Breaching soon"),
    "closed": _l("Closed"),
}


def _closing_within() -> timedelta:
    return timedelta(minutes=current_runtime().config.admin.closing_soon_minutes)


def _list_query(view: str, channel_id: int | None, now: datetime) -> Any:
    q = select(Conversation)
    if view == "closed":
        q = q.where(Conversation.status == "closed")
    else:
        q = q.where(Conversation.status == "open")
    if view == "mine":
        q = q.where(Conversation.assignee_id == current_user.id)
    elif view == "unassigned":
        q = q.where(Conversation.assignee_id.is_(None))
    elif view == "closing":
        # Open window (last customer message under the kind's window length ago, 24 h for
        # WhatsApp and Instagram) that closes within the warning time.
        by_length: dict[timedelta, list[str]] = {}
        for kind in channel_kinds.every():
            if kind.capabilities.window:
                by_length.setdefault(kind.capabilities.window_length, []).append(kind.kind)
        q = q.where(or_(false(), *(
            and_(Conversation.last_inbound_at > now - length,
                 Conversation.last_inbound_at <= now - length + _closing_within(),
                 Conversation.channel_id.in_(select(Channel.id).where(Channel.kind.in_(kinds))))
            for length, kinds in by_length.items())))
    if channel_id:
        q = q.where(Conversation.channel_id == channel_id)
    latest = func.coalesce(Conversation.last_message_at, Conversation.opened_at)
    return q.order_by(latest.desc(), Conversation.id.desc())


@bp.get("/inbox")
def inbox() -> Any:
    view = request.args.get("view", "open")
    if view not in VIEWS:
        view = "open"
    channel_arg = request.args.get("channel_id", "")
    channel_id = int(channel_arg) if channel_arg.isdigit() else None
    page = max(int(request.args["page"]), 1) if request.args.get("page", "").isdigit() else 1
    now = utcnow()
    due: dict[int, inbox_queues.Due] = {}
    with db().scope() as s:
        if view == "breaching":
            found = inbox_queues.breaching(s, now=now, channel_id=channel_id)[(page - 1) * PAGE:page * PAGE + 1]
            due = {d.conversation_id: d for d in found}
            by_id = {c.id: c for c in s.scalars(select(Conversation).where(Conversation.id.in_(list(due))))}
            conversations = [by_id[d.conversation_id] for d in found if d.conversation_id in by_id]
        else:
            if view == "queued":
                query = inbox_queues.queued_query(inbox_queues.my_team_ids(s, current_user.id))
                if channel_id:
                    query = query.where(Conversation.channel_id == channel_id)
            else:
                query = _list_query(view, channel_id, now)
            conversations = list(s.scalars(query.offset((page - 1) * PAGE).limit(PAGE + 1)))
        more = len(conversations) > PAGE
        conversations = conversations[:PAGE]
        ids = [c.id for c in conversations]
        queued = inbox_queues.queue_info(s, ids) if view == "queued" else {}
        team_names = {t.id: t.name for t in s.scalars(select(Team))}
        last_ids = select(func.max(Message.id)).where(Message.conversation_id.in_(ids), Message.type != "read") \
            .group_by(Message.conversation_id)
        last = {m.conversation_id: m for m in s.scalars(select(Message).where(Message.id.in_(last_ids)))} if ids else {}
        contacts = {c.id: c for c in s.scalars(select(Contact).where(
            Contact.id.in_({c.contact_id for c in conversations})))} if ids else {}
        users = {u.id: u for u in s.scalars(select(User))}
        channels = list(s.scalars(select(Channel).order_by(Channel.id)))
    config = current_runtime().config
    kinds = {ch.id: channel_kinds.of(ch, config) for ch in channels}
    default = channel_kinds.get(channel_kinds.DEFAULT_KIND, config)
    rows = []
    for c in conversations:
        kind = kinds.get(c.channel_id, default)
        state = kind.window(c, now)  # Telegram: none, always open
        rows.append({
            "c": c, "contact": contacts.get(c.contact_id), "last": last.get(c.id),
            "assignee": users.get(c.assignee_id) if c.assignee_id else None,
            "window_open": state.open, "closes_at": state.closes_at, "closing_soon": state.closing_soon,
            "team": team_names.get(c.team_id) if c.team_id else None, "queue": queued.get(c.id),
            "due": due.get(c.id), "kind": kind.kind, "templates": kind.capabilities.templates,
            "human_until": human_reply_until(kinds.get(c.channel_id), c, now),
        })
    return render_template("admin/inbox.html", rows=rows, view=view, views=VIEWS, channels=channels,
                           channel_id=channel_id, page=page, more=more, reasons=REASONS, users=users,
                           channel_names={ch.id: ch.name for ch in channels})


def human_reply_until(kind: Any, conversation: Conversation, now: datetime) -> datetime | None:
    """Until when a person may still reply after the window closed (Instagram's
    human-agent tag), or None (the window is open, or nobody may)."""
    if kind is None or kind.capabilities.human_agent_window is None:
        return None
    state = kind.window(conversation, now)
    return state.human_agent_until if not state.open and state.open_for(now, human=True) else None


def _crm_links(s: Any, conversation: Conversation) -> list[dict[str, Any]]:
    rows = s.execute(
        select(CrmLink, ConnectorRecord).join(ConnectorRecord, ConnectorRecord.id == CrmLink.connector_id)
        .where(or_(
            (CrmLink.entity_type == "conversation") & (CrmLink.entity_id == str(conversation.id)),
            (CrmLink.entity_type == "contact") & (CrmLink.entity_id == str(conversation.contact_id)),
        )).order_by(ConnectorRecord.name, CrmLink.entity_type)
    ).all()
    out = []
    for link, record in rows:
        kind_cls = registry.find(record.kind)
        url = None
        link_url = getattr(kind_cls, "link_url", None)
        if callable(link_url):
            try:  # optional hook: (settings, crm_type, crm_id) -> URL in the CRM
                url = link_url(record.settings, link.crm_type, link.crm_id)
            except Exception:
                url = None
        out.append({"connector": record.name, "kind": record.kind, "crm_type": link.crm_type,
                    "crm_id": link.crm_id, "url": url, "entity": link.entity_type})
    return out


def _thread(conversation_id: int, *, reply_error: str | None = None, reply_text: str = "",
            template_id: int | None = None, template_values: dict[str, str] | None = None,
            template_error: str | None = None, status: int = 200) -> Any:
    now = utcnow()
    with db().scope() as s:
        c = get_or_404(s, Conversation, conversation_id)
        contact = s.get(Contact, c.contact_id)
        channel = s.get(Channel, c.channel_id)
        messages = list(s.scalars(select(Message).where(Message.conversation_id == c.id, Message.type != "read")
                                  .order_by(Message.sent_at, Message.id)))
        authors = {u.id: u for u in s.scalars(select(User))}
        operators = [u for u in authors.values() if u.active and u.role in OPERATORS]
        teams = list(s.scalars(select(Team).order_by(Team.name)))
        team = s.get(Team, c.team_id) if c.team_id else None
        queued = inbox_queues.queue_info(s, [c.id]).get(c.id)
        kind = channel_kinds.of(channel, current_runtime().config)
        usable = kind.usable_templates(s, channel)
        links = _crm_links(s, c)
        automation_runs = automation_log.conversation_runs(s, c.id)
        chosen = s.get(Template, template_id) if template_id else None
        if chosen is not None and chosen.waba_id != channel.waba_id:
            chosen = None
    rendered, problem = (template_form.preview(chosen, template_values) if chosen is not None else (None, None))
    capabilities = kind.capabilities
    state = kind.window(c, now)
    applies = state.applies  # Telegram has none: replies any time
    is_open = state.open
    human_until = human_reply_until(kind, c, now)
    return render_template(
        "admin/conversation.html", c=c, contact=contact, channel=channel, messages=messages, authors=authors,
        operators=operators, templates=usable, links=links, window_open=is_open, human_until=human_until,
        reply_open=is_open or human_until is not None, channel_kind=kind.kind,
        closes_at=state.closes_at, window_applies=applies, channel_templates=capabilities.templates,
        closing_soon=state.closing_soon, reply_error=reply_error,
        reply_text=reply_text, chosen=chosen, variables=template_form.variables(chosen) if chosen else [],
        template_values=template_values or {}, rendered=rendered, template_problem=template_error or problem,
        can_act=current_user.role in OPERATORS, teams=teams, team=team, queued=queued, reasons=REASONS,
        automation_runs=automation_runs,
    ), status


@bp.get("/inbox/<int:conversation_id>")
def conversation(conversation_id: int) -> Any:
    template_arg = request.args.get("template_id", "")
    return _thread(conversation_id, template_id=int(template_arg) if template_arg.isdigit() else None)


@bp.post("/inbox/<int:conversation_id>/reply")
@roles(*OPERATORS)
def reply(conversation_id: int) -> Any:
    text = request.form.get("text", "").strip()
    if not text:
        return _thread(conversation_id, reply_error=_("Write a message first."), status=422)
    try:
        with db().scope() as s:
            get_or_404(s, Conversation, conversation_id)
            message = queue(s, Outgoing(kind="text", content={"body": text}, conversation_id=conversation_id,
                                        author_id=current_user.id), now=utcnow(), config=current_runtime().config)
            target = message.conversation_id
    except WindowClosed as exc:
        if not exc.details.get("templates") and "human_agent_until" in exc.details:  # Instagram: Meta's words
            return _thread(conversation_id, reply_text=text, status=exc.status,
                           reply_error=_("Not sent: %(reason)s", reason=str(exc)))
        return _thread(conversation_id, reply_text=text, status=exc.status, reply_error=_(
            "Not sent: the 24-hour window is closed, so WhatsApp only accepts a template. Choose one below."))
    except SendRefused as exc:
        return _thread(conversation_id, reply_error=str(exc), reply_text=text, status=exc.status)
    flash(_("Reply queued: it is sent in a moment."), "success")
    return redirect(url_for("admin.conversation", conversation_id=target) + "#reply")


def _chosen_template(conversation_id: int, template_id: str) -> Template:
    with db().scope() as s:
        c = get_or_404(s, Conversation, conversation_id)
        channel = s.get(Channel, c.channel_id)
        chosen = s.get(Template, int(template_id)) if template_id.isdigit() else None
        if chosen is None or chosen.waba_id != channel.waba_id:
            abort(404)
        s.expunge(chosen)
    return chosen


@bp.get("/inbox/<int:conversation_id>/template")
def template_fields(conversation_id: int) -> Any:
    """The variables form of the chosen template (htmx swaps it into the thread)."""
    chosen = _chosen_template(conversation_id, request.args.get("template_id", ""))
    rendered, _problem = template_form.preview(chosen, None)
    return render_template("admin/_template_fields.html", c_id=conversation_id, chosen=chosen,
                           variables=template_form.variables(chosen), values={}, rendered=rendered,
                           problem=None, can_act=current_user.role in OPERATORS)


@bp.post("/inbox/<int:conversation_id>/template/preview")
def template_preview(conversation_id: int) -> Any:
    """The template with the variables typed so far (read-only: any role)."""
    chosen = _chosen_template(conversation_id, request.form.get("template_id", ""))
    rendered, problem = template_form.preview(chosen, request.form)
    return render_template("admin/_template_preview.html", rendered=rendered, problem=problem)


@bp.post("/inbox/<int:conversation_id>/template/send")
@roles(*OPERATORS)
def template_send(conversation_id: int) -> Any:
    chosen = _chosen_template(conversation_id, request.form.get("template_id", ""))
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        with db().scope() as s:
            outgoing = Outgoing(kind="template", template=template_form.template_input(chosen, request.form),
                                conversation_id=conversation_id, author_id=current_user.id)
            message = queue(s, outgoing, now=utcnow(), config=current_runtime().config)
            target = message.conversation_id
    except SendRefused as exc:
        return _thread(conversation_id, template_id=chosen.id, template_values=values, template_error=str(exc),
                       status=exc.status)
    flash(_("Template %(name)s queued: it is sent in a moment.", name=chosen.name), "success")
    return redirect(url_for("admin.conversation", conversation_id=target) + "#reply")


@bp.post("/inbox/<int:conversation_id>/assign")
@roles(*OPERATORS)
def conversation_assign(conversation_id: int) -> Any:
    choice = request.form.get("assignee_id", "")
    assignee = current_user.id if choice == "me" else (int(choice) if choice.isdigit() else None)
    try:
        with db().scope() as s:
            c = get_or_404(s, Conversation, conversation_id)
            assign(s, c, assignee, now=utcnow())
    except LookupError:
        flash(_("That user cannot take conversations."), "error")
    else:
        flash(_("Conversation assigned.") if assignee else _("Conversation unassigned."), "success")
    return redirect(url_for("admin.conversation", conversation_id=conversation_id))


@bp.post("/inbox/<int:conversation_id>/transfer")
@roles(*OPERATORS)
def conversation_transfer(conversation_id: int) -> Any:
    """To an operator (assigned now when online with room, else waiting for them) or to a
    team (routed by its strategy); the history stays with the conversation."""
    kind, _sep, ident = request.form.get("to", "").partition(":")
    if kind not in ("user", "team") or not ident.isdigit():
        flash(_("Choose an operator or a team to transfer to."), "error")
        return redirect(url_for("admin.conversation", conversation_id=conversation_id))
    with db().scope() as s:
        c = get_or_404(s, Conversation, conversation_id)
        if c.status != "open":
            flash(_("The conversation is closed."), "error")
            return redirect(url_for("admin.conversation", conversation_id=conversation_id))
        if kind == "user":
            target = s.get(User, int(ident))
            if target is None or not target.active or target.role not in OPERATORS:
                flash(_("That user cannot take conversations."), "error")
                return redirect(url_for("admin.conversation", conversation_id=conversation_id))
            name = target.name or target.email
            result = engine.transfer(s, c, now=utcnow(), to_user_id=target.id, by_user_id=current_user.id)
        else:
            team = get_or_404(s, Team, int(ident))
            name = team.name
            result = engine.transfer(s, c, now=utcnow(), to_team_id=team.id, by_user_id=current_user.id)
        assignee = s.get(User, result.user_id) if result.outcome == "assigned" and result.user_id else None
        assignee_name = (assignee.name or assignee.email) if assignee else ""
    if result.outcome == "assigned":
        flash(_("Transferred to %(name)s: assigned to %(who)s.", name=name, who=assignee_name), "success")
    elif result.outcome == "queued":
        flash(_("Transferred to %(name)s: it waits (%(reason)s).", name=name,
                reason=str(REASONS.get(result.reason or "", result.reason))), "success")
    else:
        flash(_("Transferred to %(name)s.", name=name), "success")
    return redirect(url_for("admin.conversation", conversation_id=conversation_id))


@bp.post("/inbox/<int:conversation_id>/close")
@roles(*OPERATORS)
def conversation_close(conversation_id: int) -> Any:
    reason = request.form.get("reason", "").strip()[:500]
    with db().scope() as s:
        c = get_or_404(s, Conversation, conversation_id)
        close(s, c, reason=reason, now=utcnow())
    flash(_("Conversation closed."), "success")
    return redirect(url_for("admin.conversation", conversation_id=conversation_id))


@bp.get("/media/<int:message_id>")
def media(message_id: int) -> Any:
    """A message's media for the signed-in admin (the API's /messages/<id>/media takes a token)."""
    try:
        found = fetch_media(current_runtime(), message_id)
    except MediaUnavailable as exc:
        return Response(exc.message, status=exc.status, mimetype="text/plain")
    # Customers send any file: only pictures, sound and video open in the page, the rest downloads,
    # and nothing served from here may run script in the admin's origin.
    inline = found.content_type.split("/")[0] in ("image", "audio", "video")
    filename = "".join(ch for ch in found.filename if ch.isprintable() and ch not in '"\\') or str(message_id)
    return Response(found.data, mimetype=found.content_type, headers={
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
        "Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox"})
