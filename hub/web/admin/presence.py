"""Operators' presence in the admin: the toggle in the page header (online, away,
offline), the Operators page (presence, capacity, open chats; admins change anyone's),
and the admin pages keeping an operator's presence alive like API requests do."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Conversation, OperatorState, Team, TeamMember, User
from hub.models.routing import PRESENCES
from hub.routing import engine
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, OPERATORS, roles, safe_next
from hub.web.lookups import db, get_or_404

PRESENCE_LABELS = {"online": _l("Online"), "away": _l("Away"), "offline": _l("Offline")}
SEEN_RESOLUTION = timedelta(minutes=1)  # don't write on every page
MAX_CAPACITY = 1000


@bp.before_request
def _keep_presence() -> None:
    """A signed-in operator using the admin is seen: presence does not time out under them."""
    g.presence = None
    if request.endpoint == "admin.static" or not current_user.is_authenticated or current_user.role not in OPERATORS:
        return
    now = utcnow()
    with db().scope() as s:
        state = s.get(OperatorState, current_user.id)
        if state is None:
            g.presence = "offline"
            return
        if state.presence != "offline" and (state.seen_at is None or now - state.seen_at > SEEN_RESOLUTION):
            state.seen_at = now
        g.presence = state.presence


@bp.app_context_processor
def _presence_context() -> dict[str, Any]:
    return {"my_presence": g.get("presence"), "presence_labels": PRESENCE_LABELS}


@bp.post("/presence")
@roles(*OPERATORS)
def presence() -> Any:
    """My own presence; going online hands me the chats waiting for me or my teams."""
    chosen = request.form.get("presence", "")
    if chosen not in PRESENCES:
        flash(_("Choose online, away or offline."), "error")
    else:
        with db().scope() as s:
            engine.set_presence(s, current_user.id, chosen, now=utcnow())
        flash(_("You are %(presence)s.", presence=str(PRESENCE_LABELS[chosen]).lower()), "success")
    back = request.form.get("back")
    return redirect(safe_next(back) if back else url_for("admin.dashboard"))


def _rows(s: Any) -> list[dict[str, Any]]:
    users = list(s.scalars(select(User).where(User.active.is_(True), User.role.in_(OPERATORS)).order_by(User.id)))
    states = {st.user_id: st for st in s.scalars(select(OperatorState))}
    open_chats = dict(s.execute(select(Conversation.assignee_id, func.count()).where(
        Conversation.status == "open", Conversation.assignee_id.is_not(None)).group_by(Conversation.assignee_id)).all())
    team_names = {t.id: t.name for t in s.scalars(select(Team))}
    teams: dict[int, list[str]] = {}
    for team_id, user_id in s.execute(select(TeamMember.team_id, TeamMember.user_id)):
        teams.setdefault(user_id, []).append(team_names.get(team_id, ""))
    return [{"user": u, "presence": states[u.id].presence if u.id in states else "offline",
             "capacity": states[u.id].capacity if u.id in states else 5,
             "seen_at": states[u.id].seen_at if u.id in states else None,
             "open": open_chats.get(u.id, 0), "teams": sorted(teams.get(u.id, []))} for u in users]


def _page(errors: dict[int, str] | None = None, typed: dict[int, str] | None = None, status: int = 200) -> Any:
    with db().scope() as s:
        rows = _rows(s)
        s.expunge_all()
    return render_template("admin/operators.html", rows=rows, presences=PRESENCES, errors=errors or {},
                           typed=typed or {}, max_capacity=MAX_CAPACITY), status


@bp.get("/operators")
def operators() -> Any:
    return _page()


@bp.post("/operators/<int:user_id>")
@roles(*ADMIN)
def operator_update(user_id: int) -> Any:
    """An admin sets anyone's presence and capacity."""
    chosen = request.form.get("presence", "")
    raw = request.form.get("capacity", "").strip()
    problem = None
    if chosen not in PRESENCES:
        problem = _("Choose online, away or offline.")
    elif not raw.isdigit() or int(raw) > MAX_CAPACITY:
        problem = _("Capacity: a whole number from 0 to %(n)s.", n=MAX_CAPACITY)
    with db().scope() as s:
        user = get_or_404(s, User, user_id, where=lambda u: u.active and u.role in OPERATORS)
        if problem is None:
            engine.set_presence(s, user_id, chosen, now=utcnow(), capacity=int(raw))
        name = user.name or user.email
    if problem is not None:
        return _page(errors={user_id: problem}, typed={user_id: raw}, status=422)
    flash(_("%(name)s: %(presence)s, up to %(n)s chats.", name=name, presence=str(PRESENCE_LABELS[chosen]).lower(),
            n=int(raw)), "success")
    return redirect(url_for("admin.operators"))
