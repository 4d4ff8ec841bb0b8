"""Admin sessions kept on the server: signing out ends that browser's session for good (a
saved copy of the cookie opens nothing), other browsers of the user stay signed in, and a
password change, an admin's reset or switching a user off ends all of them."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select, update

from hub.platform.db import utcnow
from hub.models.users import AdminSession
from tests.support.admin import PASSWORD, login, make_user, post, signed_in

NEW = "a much longer passphrase"


def rows(runtime, user_id: int | None = None) -> int:
    query = select(func.count()).select_from(AdminSession)
    if user_id is not None:
        query = query.where(AdminSession.user_id == user_id)
    with runtime.db.scope() as s:
        return s.scalar(query)


def replay(app, cookie: str):
    """A browser that only has a copy of someone's session cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def test_a_saved_session_cookie_opens_nothing_after_sign_out(app, runtime):
    client = signed_in(app, runtime, "admin")
    saved = client.get_cookie("session").value
    assert replay(app, saved).get("/admin/users").status_code == 200  # the copy works while signed in
    assert post(client, "/admin/logout", page="/admin/").status_code == 302
    r = replay(app, saved).get("/admin/users")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login")
    assert client.get("/admin/users").headers["Location"].startswith("/admin/login")
    assert rows(runtime) == 0


def test_signing_out_in_one_browser_keeps_the_others_signed_in(app, runtime):
    user_id = make_user(runtime, "operator")
    laptop, phone = app.test_client(), app.test_client()
    assert login(laptop, "operator@example.com").status_code == 302
    assert login(phone, "operator@example.com").status_code == 302
    assert rows(runtime, user_id) == 2
    post(laptop, "/admin/logout", page="/admin/")
    assert laptop.get("/admin/inbox").status_code == 302
    assert phone.get("/admin/inbox").status_code == 200
    assert rows(runtime, user_id) == 1


def test_only_a_hash_of_the_session_id_is_stored(app, runtime):
    client = signed_in(app, runtime, "viewer")
    with client.session_transaction() as session:
        _stamp, _, session_id = session["_user_id"].partition(".")
    assert len(session_id) >= 40
    with runtime.db.scope() as s:
        stored = s.scalars(select(AdminSession.token_hash)).one()
    assert stored == hashlib.sha256(session_id.encode()).hexdigest() and session_id not in stored


def test_a_password_change_ends_every_other_session_and_keeps_this_one(app, runtime):
    user_id = make_user(runtime, "operator")
    here, elsewhere = app.test_client(), app.test_client()
    login(here, "operator@example.com")
    login(elsewhere, "operator@example.com")
    saved = elsewhere.get_cookie("session").value
    page = "/admin/account/password"
    r = post(here, page, {"current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW}, page=page)
    assert r.status_code == 302
    assert rows(runtime, user_id) == 1  # the new session of this browser, nothing else
    assert here.get("/admin/inbox").status_code == 200
    assert replay(app, saved).get("/admin/inbox").status_code == 302


def test_an_admins_reset_and_switching_off_end_all_of_the_users_sessions(app, runtime):
    operator_id = make_user(runtime, "operator")
    theirs = app.test_client()
    login(theirs, "operator@example.com")
    admin = signed_in(app, runtime, "admin")
    page = f"/admin/users/{operator_id}/password"
    assert post(admin, page, {"new_password": NEW, "new_password_again": NEW}, page=page).status_code == 302
    assert rows(runtime, operator_id) == 0
    assert theirs.get("/admin/inbox").status_code == 302

    assert login(theirs, "operator@example.com", NEW).status_code == 302
    saved = theirs.get_cookie("session").value
    post(admin, f"/admin/users/{operator_id}", {"role": "operator"}, page="/admin/users")  # "active" unticked
    assert rows(runtime, operator_id) == 0
    post(admin, f"/admin/users/{operator_id}", {"role": "operator", "active": "on"}, page="/admin/users")
    assert replay(app, saved).get("/admin/inbox").status_code == 302  # switched on again: still signed out


def test_idle_sessions_end_on_the_server_and_their_rows_are_pruned(app, runtime):
    lifetime = timedelta(minutes=runtime.config.admin.session_minutes)
    client = signed_in(app, runtime, "admin")
    with runtime.db.scope() as s:
        s.execute(update(AdminSession).values(last_seen_at=utcnow() - timedelta(minutes=5)))
    assert client.get("/admin/").status_code == 200
    with runtime.db.scope() as s:  # a request refreshes last_seen_at
        assert utcnow() - s.scalars(select(AdminSession.last_seen_at)).one() < timedelta(minutes=1)
        s.execute(update(AdminSession).values(last_seen_at=utcnow() - lifetime - timedelta(minutes=2)))
    # The cookie's own clock says fresh, the server's says idle: the server wins.
    assert client.get("/admin/").headers["Location"].startswith("/admin/login")
    assert rows(runtime) == 0

    stale = signed_in(app, runtime, "viewer")
    with runtime.db.scope() as s:
        s.execute(update(AdminSession).values(last_seen_at=utcnow() - lifetime - timedelta(minutes=2)))
    assert login(app.test_client(), "admin@example.com").status_code == 302
    assert rows(runtime) == 1  # the viewer's idle row went at this sign-in
    assert stale.get("/admin/").status_code == 302


def test_a_cookie_from_before_server_side_sessions_opens_nothing(app, runtime):
    """Cookies of the older format (`<user id>.<password stamp>`) name no session row."""
    client = signed_in(app, runtime, "admin")
    with client.session_transaction() as session:
        stamp, _, _ = session["_user_id"].partition(".")
        session["_user_id"] = f"1.{stamp}"
    assert client.get("/admin/users").headers["Location"].startswith("/admin/login")
