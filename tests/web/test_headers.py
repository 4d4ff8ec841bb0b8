"""Transport and response headers: a hub on another machine over plain http refuses to
start unless told to allow it; https marks the cookies Secure; the admin's pages carry a
strict Content-Security-Policy (and keep no inline script or style it would refuse),
X-Frame-Options, nosniff and a Referrer-Policy; t.js, tracked links and webhooks keep
working as before."""
from __future__ import annotations

import logging
import re

import pytest

from hub.app import create_app, is_local_address
from hub.platform.config import load_config
from hub.shared.config_errors import ConfigError
from hub.platform.db import utcnow
from hub.models import Template
from hub.platform.runtime import Runtime
from tests.conftest import make_config
from tests.support.admin import login, make_user, signed_in
from tests.support.factories import webhook_connector
from tests.support.tracking import make_link, visit
from tests.support.whatsapp import WABA_ID, fixture, make_channel, post_signed


def app_for(runtime, tmp_path, **settings):
    """The hub's app under other settings, sharing the test's database connections."""
    config = make_config(runtime.config.database_url, tmp_path, **settings)
    app = create_app(runtime=Runtime(config=config, db=runtime.db, vault=runtime.vault))
    app.config["TESTING"] = True
    return app


# -- plain http to another machine ----------------------------------------------------------

@pytest.mark.parametrize("base_url", ["http://hub.example.com", "http://10.0.0.5:8000", "http://crm.internal/"])
def test_plain_http_to_another_machine_refuses_to_start_with_a_warning(runtime, tmp_path, caplog, base_url):
    with caplog.at_level(logging.WARNING, logger="hub.app"):
        with pytest.raises(ConfigError, match=r"allow_insecure = true") as refused:
            app_for(runtime, tmp_path, base_url=base_url)
    assert "https" in str(refused.value)
    assert any("plain http" in r.getMessage() and "refusing to start" in r.getMessage() for r in caplog.records)


def test_allow_insecure_starts_but_still_warns(runtime, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hub.app"):
        app = app_for(runtime, tmp_path, base_url="http://hub.example.com", web__allow_insecure=True)
    assert any("allow_insecure = true" in r.getMessage() for r in caplog.records)
    assert app.config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000",
                                      "http://127.0.1.1", "http://hub.localhost", "http://hub.test",
                                      "https://hub.example.com"])
def test_loopback_test_names_and_https_start_without_a_warning(runtime, tmp_path, caplog, base_url):
    with caplog.at_level(logging.WARNING, logger="hub.app"):
        app_for(runtime, tmp_path, base_url=base_url)
    assert not [r for r in caplog.records if r.name == "hub.app"]


def test_the_embedded_default_and_the_demo_need_no_setting():
    from hub.demo import demo_config

    defaults = load_config(data={}, environ={})
    assert defaults.base_url == "http://127.0.0.1:8000" and defaults.web.allow_insecure is False
    assert is_local_address(defaults.base_url) and is_local_address(demo_config(defaults).base_url)
    assert not is_local_address("http://hub.example.com") and not is_local_address("http://test.example.com")


def test_over_https_the_cookies_are_secure_and_browsers_are_told_to_stay_on_https(runtime, tmp_path):
    app = app_for(runtime, tmp_path, base_url="https://hub.example.com")
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    make_user(runtime, "admin")
    client = app.test_client()
    https = {"base_url": "https://hub.example.com"}
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login", **https).get_data(as_text=True))
    r = client.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery",
                                          "csrf_token": token.group(1)},
                    headers={"Referer": "https://hub.example.com/admin/login"}, **https)
    assert r.status_code == 302
    cookies = r.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies), cookies
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_over_plain_http_on_this_machine_nothing_claims_https(client, runtime):
    make_user(runtime, "admin")
    r = login(client, "admin@example.com")
    assert r.status_code == 302
    assert not any("Secure" in c for c in r.headers.getlist("Set-Cookie"))
    assert "Strict-Transport-Security" not in r.headers


# -- the admin's headers ----------------------------------------------------------------------

def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in (p.strip() for p in policy.split(";")) if d}


def assert_admin_headers(response) -> None:
    csp = directives(response)
    assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'self'" and csp["form-action"] == "'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_every_kind_of_admin_response_carries_the_headers(client, app, runtime):
    assert_admin_headers(client.get("/admin/setup"))  # before any user exists
    make_user(runtime, "viewer")
    assert_admin_headers(client.get("/admin/login"))
    assert_admin_headers(client.get("/admin/"))  # a redirect to sign in
    assert_admin_headers(client.post("/admin/login", data={"email": "x"}))  # 400: no CSRF token
    viewer = signed_in(app, runtime, "viewer", "viewer2@example.com")
    assert_admin_headers(viewer.get("/admin/"))
    assert_admin_headers(viewer.get("/admin/users"))  # 403
    assert_admin_headers(viewer.get("/admin/channels/999"))  # 404


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)
STYLE = re.compile(r"<style|\sstyle=", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def test_admin_pages_keep_no_inline_script_style_or_handler_the_policy_would_refuse(app, runtime):
    connector_id = webhook_connector(runtime, "http://127.0.0.1:9/hooks")
    channel_id, key = make_channel(runtime)
    assert post_signed(app.test_client(), key, fixture("text__plain")).status_code == 200
    with runtime.db.scope() as s:
        template = Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                            category="UTILITY", parameter_format="POSITIONAL", synced_at=utcnow(),
                            components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
                            created_at=utcnow(), updated_at=utcnow())
        s.add(template)
        s.flush()
        template_id = template.id
    admin = signed_in(app, runtime, "admin")
    pages = ["/admin/", "/admin/channels", "/admin/channels/new", f"/admin/channels/{channel_id}",
             f"/admin/channels/{channel_id}/edit", "/admin/connectors", "/admin/connectors/new",
             "/admin/connectors/new/webhook", f"/admin/connectors/{connector_id}",
             f"/admin/connectors/{connector_id}/edit", f"/admin/connectors/{connector_id}/preview",
             "/admin/deliveries", "/admin/deliveries/1", "/admin/inbox", "/admin/inbox/1",
             f"/admin/inbox/1?template_id={template_id}", "/admin/templates", f"/admin/templates/{template_id}",
             "/admin/users", "/admin/account/password"]
    for page in pages:
        r = admin.get(page)
        assert r.status_code == 200, (page, r.status_code)
        assert_admin_headers(r)
        html = r.get_data(as_text=True)
        for pattern in (INLINE_SCRIPT, STYLE, HANDLER, JS_URL):
            found = pattern.search(html)
            assert found is None, f"{page}: {html[max(0, found.start() - 80):found.end() + 80]}"
        assert "/static/admin.js" in html
    signed_out = app.test_client()
    assert INLINE_SCRIPT.search(signed_out.get("/admin/login").get_data(as_text=True)) is None


# -- what other sites and services load keeps working -----------------------------------------

def test_t_js_tracked_links_and_webhooks_are_not_given_the_admins_policy(client, runtime):
    script = client.get("/t.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert script.headers["X-Content-Type-Options"] == "nosniff"  # it is javascript, so it loads anywhere
    assert "Content-Security-Policy" not in script.headers and "X-Frame-Options" not in script.headers
    assert "Cross-Origin-Resource-Policy" not in script.headers
    channel_id, key = make_channel(runtime)
    make_link(runtime, channel_id)
    redirect, code = visit(client, utm_source="ads")
    assert redirect.status_code == 302 and code and redirect.headers["Location"].startswith("https://wa.me/")
    assert "Content-Security-Policy" not in redirect.headers
    hook = post_signed(client, key, fixture("text__plain"))
    assert hook.status_code == 200 and "Content-Security-Policy" not in hook.headers
