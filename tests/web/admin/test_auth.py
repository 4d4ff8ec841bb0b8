"""Admin access: first-run setup, sign-in with rate limits (per address and e-mail, per
address, per account, known browsers), expiring sessions, CSRF on every form (and none on
the API or webhooks), roles with 403."""
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


KNOWN = "hub_known_browser"


def from_address(app, address: str, known: str | None = None):
    """A browser at this client address, with a known-browser cookie if given."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if known is not None:
        client.set_cookie(KNOWN, known, path="/admin/")
    return client


def known_cookie(client) -> str:
    return client.get_cookie(KNOWN, path="/admin/").value


def test_many_emails_from_one_address_are_limited(app, runtime):
    make_user(runtime, "admin")
    per_address = runtime.config.admin.login_attempts_per_address
    assert per_address > runtime.config.admin.login_attempts  # else the per-e-mail limit would stop it first
    for n in range(per_address):
        assert login(from_address(app, "203.0.113.9"), f"guess{n}@example.com", "wrong password!").status_code == 401
    blocked = login(from_address(app, "203.0.113.9"), "admin@example.com")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in blocked.get_data(as_text=True)
    assert login(from_address(app, "198.51.100.1"), "admin@example.com").status_code == 302  # other addresses: open


def test_one_email_from_many_addresses_is_limited(app, runtime):
    make_user(runtime, "admin")
    per_account = runtime.config.admin.login_attempts_per_account
    for n in range(per_account):
        assert login(from_address(app, f"203.0.113.{n + 1}"), "admin@example.com", "wrong password!").status_code == 401
    assert login(from_address(app, "198.51.100.1"), "admin@example.com").status_code == 429
    make_user(runtime, "viewer")  # other accounts from those addresses: open
    assert login(from_address(app, "203.0.113.1"), "viewer@example.com").status_code == 302


def test_a_limit_on_one_address_leaves_the_account_open_from_other_addresses(app, runtime):
    """One address alone cannot spend the account's allowance (login_attempts is the
    smaller one), so its owner elsewhere still signs in."""
    make_user(runtime, "admin")
    attacker = from_address(app, "203.0.113.9")
    for _ in range(runtime.config.admin.login_attempts):
        assert login(attacker, "admin@example.com", "wrong password!").status_code == 401
    assert login(attacker, "admin@example.com").status_code == 429
    assert login(from_address(app, "198.51.100.1"), "admin@example.com").status_code == 302


def test_while_strangers_have_spent_the_accounts_allowance_its_owners_browser_still_gets_in(app, runtime):
    make_user(runtime, "admin")
    make_user(runtime, "viewer")
    owner = from_address(app, "198.51.100.1")
    assert login(owner, "admin@example.com").status_code == 302  # a known browser from now on
    assert post(owner, "/admin/logout", page="/admin/").status_code == 302
    viewers = from_address(app, "198.51.100.2")
    assert login(viewers, "viewer@example.com").status_code == 302  # known for another account
    for n in range(runtime.config.admin.login_attempts_per_account):
        login(from_address(app, f"203.0.113.{n + 1}"), "admin@example.com", "wrong password!")
    assert login(from_address(app, "198.51.100.1"), "admin@example.com").status_code == 429  # a stranger
    assert login(from_address(app, "198.51.100.2", known_cookie(viewers)), "admin@example.com").status_code == 429
    forged = from_address(app, "198.51.100.1", known_cookie(owner) + "x")
    assert login(forged, "admin@example.com").status_code == 429
    assert login(owner, "admin@example.com").status_code == 302


def test_a_known_browser_has_an_allowance_of_its_own(app, runtime):
    make_user(runtime, "admin")
    owner = from_address(app, "198.51.100.1")
    assert login(owner, "admin@example.com").status_code == 302
    post(owner, "/admin/logout", page="/admin/")
    for _ in range(runtime.config.admin.login_attempts):
        assert login(owner, "admin@example.com", "wrong password!").status_code == 401
    assert login(owner, "admin@example.com").status_code == 429
    assert login(from_address(app, "198.51.100.1"), "admin@example.com").status_code == 302  # others: their own


def test_sign_ins_that_succeed_use_up_no_allowance(app, runtime):
    """Colleagues behind one office address sign in all morning."""
    make_user(runtime, "operator")
    cfg = runtime.config.admin
    for _ in range(max(cfg.login_attempts, cfg.login_attempts_per_address, cfg.login_attempts_per_account) + 2):
        assert login(from_address(app, "203.0.113.50"), "operator@example.com").status_code == 302


def test_a_bucket_takes_back_no_more_than_its_burst(runtime):
    from hub.platform.ratelimit import TokenBucket

    bucket = TokenBucket(runtime.db, "test:give-back", rate=1 / 3600, burst=2)
    assert bucket.try_take() == 0 and bucket.try_take() == 0 and bucket.try_take() > 0
    bucket.give_back()
    assert bucket.try_take() == 0 and bucket.try_take() > 0
    for _ in range(5):
        bucket.give_back()
    assert bucket.try_take() == 0 and bucket.try_take() == 0 and bucket.try_take() > 0


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
    assert post_signed(client, key, fixture("text__plain")).status_code == 200


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
