"""Admin access: first-run setup, sign-in with a rate limit, expiring sessions, CSRF on
every form (and none on the API or webhooks), roles with 403."""
from __future__ import annotations

from sqlalchemy import func, select

from hub.models import User
from tests.support.admin import PASSWORD, csrf_token, field_errors, login, make_user, post, signed_in
from tests.support.whatsapp import fixture, make_channel, post_signed

SETUP = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD, "password_again": PASSWORD}


def users(runtime) -> int:
    with runtime.db.scope() as s:
        return s.scalar(select(func.count()).select_from(User))


def test_root_leads_to_setup_until_a_user_exists_then_to_the_admin(client, runtime):
    assert client.get("/").headers["Location"].endswith("/admin/setup")
    assert client.get("/admin/").headers["Location"].endswith("/admin/setup")
    assert client.get("/admin/login").headers["Location"].endswith("/admin/setup")
    make_user(runtime, "admin")
    assert client.get("/").headers["Location"].endswith("/admin/")
    assert client.get("/admin/setup").headers["Location"].endswith("/admin/login")


def test_setup_creates_the_first_admin_and_signs_in(client, runtime):
    r = post(client, "/admin/setup", SETUP, page="/admin/setup")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/")
    page = client.get("/admin/").get_data(as_text=True)
    assert "First steps" in page and "Ann" in page
    with runtime.db.scope() as s:
        user = s.scalars(select(User)).one()
        assert (user.email, user.role, user.name) == ("ann@example.com", "admin", "Ann")
    # Once done, setup is gone for everyone.
    other = client.application.test_client()
    assert other.get("/admin/setup").headers["Location"].endswith("/admin/login")


def test_setup_with_bad_input_shows_errors_beside_fields_and_saves_nothing(client, runtime):
    r = post(client, "/admin/setup", {**SETUP, "email": "not-an-email", "password_again": "different one"},
             page="/admin/setup")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert field_errors(page, "email") == ["Not a valid email address."]
    assert field_errors(page, "password_again") == ["The two passwords differ."]
    assert field_errors(page, "name") == []
    assert users(runtime) == 0
    short = post(client, "/admin/setup", {**SETUP, "password": "short", "password_again": "short"}, page="/admin/setup")
    assert short.status_code == 422
    assert field_errors(short.get_data(as_text=True), "password") == ["Shorter than minimum length 10."]
    assert PASSWORD not in short.get_data(as_text=True)  # passwords are never put back into the page
    assert users(runtime) == 0


def test_setup_without_csrf_token_is_refused(client, runtime):
    r = client.post("/admin/setup", data=SETUP)
    assert r.status_code == 400 and "The form expired" in r.get_data(as_text=True)
    assert users(runtime) == 0


def test_login_logout_and_wrong_password(client, runtime):
    make_user(runtime, "operator", name="Olga")
    bad = login(client, "operator@example.com", "wrong password!")
    assert bad.status_code == 401 and "Wrong e-mail or password." in bad.get_data(as_text=True)
    unknown = login(client, "nobody@example.com")
    assert unknown.status_code == 401 and "Wrong e-mail or password." in unknown.get_data(as_text=True)
    good = login(client, "OPERATOR@example.com")
    assert good.status_code == 302
    assert "Olga" in client.get("/admin/inbox").get_data(as_text=True)
    token = csrf_token(client, "/admin/inbox")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/inbox").headers["Location"].startswith("/admin/login")


def test_login_goes_back_to_the_page_asked_for_but_never_elsewhere(client, runtime):
    make_user(runtime, "viewer")
    r = client.get("/admin/channels")
    assert r.headers["Location"] == "/admin/login?next=/admin/channels?"
    token = csrf_token(client)
    r = client.post("/admin/login?next=/admin/channels", data={"email": "viewer@example.com", "password": PASSWORD,
                                                               "csrf_token": token})
    assert r.headers["Location"] == "/admin/channels"
    client.application.test_client()
    other = client.application.test_client()
    token = csrf_token(other)
    r = other.post("/admin/login?next=https://evil.example/", data={
        "email": "viewer@example.com", "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/admin/"


def test_login_without_csrf_token_is_refused(client, runtime):
    make_user(runtime, "admin")
    r = client.post("/admin/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert r.status_code == 400
    assert client.get("/admin/").status_code == 302  # still signed out


def test_login_attempts_are_limited_per_address_and_email(app, runtime):
    make_user(runtime, "admin")
    client = app.test_client()
    attempts = runtime.config.admin.login_attempts
    for _ in range(attempts):
        assert login(client, "admin@example.com", "wrong password!").status_code == 401
    blocked = login(client, "admin@example.com")  # even the right password waits now
    assert blocked.status_code == 429
    assert "Too many sign-in attempts" in blocked.get_data(as_text=True)
    # Another e-mail from the same address has its own allowance.
    make_user(runtime, "viewer")
    assert login(client, "viewer@example.com").status_code == 302


def test_disabled_users_cannot_sign_in_and_are_signed_out(app, runtime):
    client = signed_in(app, runtime, "operator")
    with runtime.db.scope() as s:
        s.scalars(select(User)).one().active = False
    assert client.get("/admin/inbox").headers["Location"].startswith("/admin/login")
    assert login(app.test_client(), "operator@example.com").status_code == 401


def test_idle_sessions_expire_on_the_server(app, runtime):
    client = signed_in(app, runtime, "admin")
    assert client.get("/admin/").status_code == 200
    lifetime = runtime.config.admin.session_minutes * 60
    with client.session_transaction() as session:
        session["seen"] -= lifetime + 5  # as if the last request were that long ago
    r = client.get("/admin/channels")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login")
    assert client.get("/admin/").status_code == 302
    assert "Your session expired" in client.get("/admin/login").get_data(as_text=True)


def test_session_cookie_is_permanent_with_the_configured_lifetime(app, runtime):
    assert app.permanent_session_lifetime.total_seconds() == runtime.config.admin.session_minutes * 60
    client = signed_in(app, runtime, "admin")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None and cookie.http_only


def test_roles_viewer_reads_operator_works_the_inbox_admin_configures(app, runtime):
    viewer = signed_in(app, runtime, "viewer")
    for page in ("/admin/", "/admin/inbox", "/admin/channels", "/admin/connectors", "/admin/deliveries",
                 "/admin/templates"):
        assert viewer.get(page).status_code == 200, page
    for page in ("/admin/users", "/admin/channels/new", "/admin/connectors/new", "/admin/connectors/new/webhook"):
        assert viewer.get(page).status_code == 403, page
    forbidden = post(viewer, "/admin/channels/new", {"name": "x"}, page="/admin/")
    assert forbidden.status_code == 403 and "Your role (viewer) cannot do this" in forbidden.get_data(as_text=True)
    operator = signed_in(app, runtime, "operator")
    assert operator.get("/admin/users").status_code == 403
    assert post(operator, "/admin/deliveries/replay", {}, page="/admin/").status_code == 403
    nav = operator.get("/admin/").get_data(as_text=True)
    assert "Users &amp; tokens" not in nav and "Inbox" in nav


def test_api_and_webhooks_need_no_csrf_token(client, runtime, admin_headers):
    # Bearer-token API: a POST with no session and no CSRF token works.
    r = client.post("/api/v1/connectors", json={"kind": "webhook", "name": "api-made", "settings": {
        "url": "http://127.0.0.1:9/", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, headers=admin_headers)
    assert r.status_code == 201, r.json
    _, key = make_channel(runtime)
    assert post_signed(client, key, fixture("text")).status_code == 200


def test_language_switch_and_accept_language(app, runtime):
    client = signed_in(app, runtime, "admin")
    assert "Overview" in client.get("/admin/").get_data(as_text=True)
    r = client.get("/admin/language/ru?next=/admin/channels")
    assert r.headers["Location"] == "/admin/channels"
    page = client.get("/admin/channels").get_data(as_text=True)
    assert 'lang="ru"' in page and "Обзор" in page and "Каналы" in page
    fresh = app.test_client()
    assert "Войти" in fresh.get("/admin/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).get_data(as_text=True)
    assert "Sign in" in fresh.get("/admin/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
