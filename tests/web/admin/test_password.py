"""Passwords: everyone changes their own (proving the current one), an admin sets a new
one for someone else; either way that user's other sessions end."""
from __future__ import annotations

from tests.support.admin import PASSWORD, field_errors, login, make_user, post, signed_in

NEW = "a much longer passphrase"


def test_a_user_changes_their_password_and_other_sessions_end(app, runtime):
    here = signed_in(app, runtime, "operator")
    elsewhere = app.test_client()
    assert login(elsewhere, "operator@example.com").status_code == 302
    page = "/admin/account/password"
    assert "Change your password" in here.get("/admin/inbox").get_data(as_text=True)
    r = post(here, page, {"current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW}, page=page)
    assert r.status_code == 302
    assert here.get("/admin/inbox").status_code == 200  # this session goes on
    assert elsewhere.get("/admin/inbox").headers["Location"].startswith("/admin/login")
    assert login(app.test_client(), "operator@example.com").status_code == 401
    assert login(app.test_client(), "operator@example.com", NEW).status_code == 302


def test_a_wrong_current_password_or_a_bad_new_one_changes_nothing(app, runtime):
    client = signed_in(app, runtime, "viewer")
    page = "/admin/account/password"
    r = post(client, page, {"current_password": "not it at all", "new_password": NEW, "new_password_again": NEW},
             page=page)
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "current_password") == ["This is not your current password."]
    r = post(client, page, {"current_password": PASSWORD, "new_password": "short", "new_password_again": "short"},
             page=page)
    assert r.status_code == 422 and field_errors(r.get_data(as_text=True), "new_password")
    r = post(client, page, {"current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW + "!"},
             page=page)
    assert field_errors(r.get_data(as_text=True), "new_password_again") == ["The two passwords differ."]
    html = r.get_data(as_text=True)
    assert PASSWORD not in html and NEW not in html  # secrets are never rendered back
    assert login(app.test_client(), "viewer@example.com").status_code == 302


def test_without_a_csrf_token_the_change_is_refused(app, runtime):
    client = signed_in(app, runtime, "viewer")
    r = client.post("/admin/account/password",
                    data={"current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW})
    assert r.status_code == 400
    assert login(app.test_client(), "viewer@example.com").status_code == 302


def test_an_admin_sets_a_new_password_for_someone_else(app, runtime):
    operator_id = make_user(runtime, "operator")
    theirs = app.test_client()
    assert login(theirs, "operator@example.com").status_code == 302
    admin = signed_in(app, runtime, "admin")
    assert f"/admin/users/{operator_id}/password" in admin.get("/admin/users").get_data(as_text=True)
    page = f"/admin/users/{operator_id}/password"
    r = post(admin, page, {"new_password": NEW, "new_password_again": NEW}, page=page)
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users")
    assert theirs.get("/admin/inbox").headers["Location"].startswith("/admin/login")
    assert login(app.test_client(), "operator@example.com", NEW).status_code == 302


def test_only_admins_set_other_peoples_passwords(app, runtime):
    admin_id = make_user(runtime, "admin")
    operator = signed_in(app, runtime, "operator")
    page = "/admin/account/password"
    r = post(operator, f"/admin/users/{admin_id}/password", {"new_password": NEW, "new_password_again": NEW},
             page=page)
    assert r.status_code == 403
    assert login(app.test_client(), "admin@example.com").status_code == 302
