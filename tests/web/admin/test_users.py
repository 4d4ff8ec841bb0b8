"""Users and API tokens in the admin: add users, change roles, switch users off (never
the last admin), create tokens shown once, revoke them."""
from __future__ import annotations

import re

from sqlalchemy import select

from hub.models import ApiToken, User
from tests.support.admin import PASSWORD, field_errors, login, post, signed_in

NEW_USER = {"email": "olga@example.com", "name": "Olga", "role": "operator", "password": "another long password"}


def all_users(runtime) -> list[tuple[str, str, bool]]:
    with runtime.db.scope() as s:
        return [(u.email, u.role, u.active) for u in s.scalars(select(User).order_by(User.id))]


def test_add_a_user_who_can_then_sign_in(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/users", NEW_USER, page="/admin/users")
    assert r.status_code == 302
    assert ("olga@example.com", "operator", True) in all_users(runtime)
    assert "User olga@example.com added." in admin.get("/admin/users").get_data(as_text=True)
    assert login(app.test_client(), "olga@example.com", NEW_USER["password"]).status_code == 302


def test_invalid_user_shows_errors_beside_fields_and_saves_nothing(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/users", {**NEW_USER, "email": "nope", "password": "short", "role": "boss"},
             page="/admin/users")
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert field_errors(page, "email") == ["Not a valid email address."]
    assert field_errors(page, "password") == ["Shorter than minimum length 10."]
    assert field_errors(page, "role") == ["Must be one of: admin, operator, viewer."]
    dup = post(admin, "/admin/users", {**NEW_USER, "email": "admin@example.com"}, page="/admin/users")
    assert dup.status_code == 422
    assert field_errors(dup.get_data(as_text=True), "email") == ["a user with email admin@example.com already exists"]
    assert all_users(runtime) == [("admin@example.com", "admin", True)]


def test_roles_change_and_the_last_admin_stays(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/users", NEW_USER, page="/admin/users")
    with runtime.db.scope() as s:
        olga = s.scalar(select(User.id).where(User.email == "olga@example.com"))
        me = s.scalar(select(User.id).where(User.email == "admin@example.com"))
    post(admin, f"/admin/users/{olga}", {"role": "viewer"}, page="/admin/users")  # unchecked "active": switched off
    assert ("olga@example.com", "viewer", False) in all_users(runtime)
    r = post(admin, f"/admin/users/{me}", {"role": "viewer", "active": "on"}, page="/admin/users")
    assert "last active admin" in admin.get(r.headers["Location"]).get_data(as_text=True)
    assert ("admin@example.com", "admin", True) in all_users(runtime)


def test_token_is_shown_once_and_works_until_revoked(app, runtime):
    admin = signed_in(app, runtime, "admin")
    with runtime.db.scope() as s:
        me = s.scalar(select(User.id))
    r = post(admin, "/admin/tokens", {"user_id": str(me), "name": "crm-sync"}, page="/admin/users")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert token.startswith("hub_")
    assert token not in admin.get("/admin/users").get_data(as_text=True)  # never again
    api = app.test_client()
    assert api.get("/api/v1/channels", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with runtime.db.scope() as s:
        token_id = s.scalar(select(ApiToken.id))
    post(admin, f"/admin/tokens/{token_id}/revoke", {}, page="/admin/users")
    assert api.get("/api/v1/channels", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "revoked" in admin.get("/admin/users").get_data(as_text=True)


def test_invalid_token_form_saves_nothing(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/tokens", {"user_id": "", "name": ""}, page="/admin/users")
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert field_errors(page, "token-user_id") == ["Required."]
    assert field_errors(page, "token-name") == ["Required."]
    with runtime.db.scope() as s:
        assert s.scalar(select(ApiToken.id)) is None


def test_user_and_token_forms_need_csrf_and_the_admin_role(app, runtime):
    admin = signed_in(app, runtime, "admin")
    assert admin.post("/admin/users", data=NEW_USER).status_code == 400
    assert admin.post("/admin/tokens", data={"user_id": "1", "name": "x"}).status_code == 400
    operator = signed_in(app, runtime, "operator")
    assert post(operator, "/admin/users", NEW_USER, page="/admin/").status_code == 403
    assert post(operator, "/admin/tokens", {"user_id": "1", "name": "x"}, page="/admin/").status_code == 403
    assert post(operator, "/admin/users/1", {"role": "operator"}, page="/admin/").status_code == 403
    assert post(operator, "/admin/tokens/1/revoke", {}, page="/admin/").status_code == 403
    assert len(all_users(runtime)) == 2
    with runtime.db.scope() as s:
        assert s.scalar(select(ApiToken.id)) is None
    assert PASSWORD  # the fixture password is the one signed in with
