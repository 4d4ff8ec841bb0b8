"""Connect with HubSpot: the admin's browser goes to HubSpot's install page and comes back
to the hub's callback, which stores the code and exchanges it at once; the state ties the
round trip to the admin's session."""
from __future__ import annotations

from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.hubspot import benchkit, emulator
from connectors.hubspot.emulator import EmulatorHandle
from tests.conftest import make_config
from tests.connectors.hubspot.conftest import make_connector
from tests.support.admin import signed_in
from tests.support.connect import BASE_URL, CALLBACK, authorize_in_browser, stored

OPTIONS = emulator.Options()


@pytest.fixture
def config(database_url, tmp_path):
    return make_config(database_url, tmp_path, base_url=BASE_URL)  # HubSpot takes http only for localhost


@pytest.fixture
def emu() -> Iterator[EmulatorHandle]:
    with benchkit.start_emulator(per_10_seconds=250, redirect_uris=(CALLBACK,)) as handle:
        yield handle


def oauth_connector(runtime, emu, **overrides) -> int:
    return make_connector(runtime, emu, auth_mode="oauth", access_token="", client_id=OPTIONS.client_id,
                          client_secret=OPTIONS.client_secret, redirect_uri=OPTIONS.redirect_uri,
                          authorize_url=emu.base_url + "/oauth/authorize", **overrides)


def test_connect_installs_the_app_and_stores_working_tokens(app, runtime, emu):
    cid = oauth_connector(runtime, emu)
    admin = signed_in(app, runtime, "admin")
    page = admin.get(f"/admin/connectors/{cid}").get_data(as_text=True)
    assert "Connect with HubSpot" in page and CALLBACK in page
    r = admin.get(f"/admin/connectors/{cid}/connect")
    assert r.status_code == 302
    install = urlsplit(r.headers["Location"])
    query = parse_qs(install.query)
    assert install.path == "/oauth/authorize" and query["client_id"] == [OPTIONS.client_id]
    assert query["redirect_uri"] == [CALLBACK] and "crm.objects.deals.write" in query["scope"][0].split()
    back = admin.get(authorize_in_browser(r.headers["Location"]))
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/admin/connectors/{cid}")
    shown = admin.get(back.headers["Location"]).get_data(as_text=True)
    assert "Connected: Connected to HubSpot account" in shown
    settings, health = stored(runtime, cid)
    assert health == "ok" and settings["redirect_uri"] == CALLBACK and not settings.get("authorization_code")
    assert settings["oauth_access_token"] and settings["oauth_refresh_token"]
    assert settings["portal_id"]  # kept from the check, for the inbox's links
    assert emu.oauth_stats()["oauth_code_exchanges"] == 1
    for secret in (settings["oauth_access_token"], settings["oauth_refresh_token"]):
        assert secret not in shown


def test_a_declined_install_says_so_and_stores_nothing(app, runtime, emu):
    cid = oauth_connector(runtime, emu)
    emu.state.options.approve_installs = False
    admin = signed_in(app, runtime, "admin")
    r = admin.get(f"/admin/connectors/{cid}/connect")
    back = admin.get(authorize_in_browser(r.headers["Location"]))
    shown = admin.get(back.headers["Location"]).get_data(as_text=True)
    assert "Connecting failed: HubSpot did not grant access: The user declined" in shown
    settings, _ = stored(runtime, cid)
    assert not settings.get("oauth_refresh_token") and settings["redirect_uri"] == OPTIONS.redirect_uri


def test_a_callback_without_the_sessions_state_is_refused(app, runtime, emu):
    cid = oauth_connector(runtime, emu)
    admin = signed_in(app, runtime, "admin")
    code = emu.issue_code(CALLBACK)
    r = admin.get(f"/admin/connectors/oauth/callback?code={code}&state=forged")
    assert r.status_code == 302
    assert "not started from this browser session" in admin.get(r.headers["Location"]).get_data(as_text=True)
    # A genuine round trip's state works once only.
    start = admin.get(f"/admin/connectors/{cid}/connect")
    back = authorize_in_browser(start.headers["Location"])
    assert admin.get(back).status_code == 302
    again = admin.get(back)
    assert "not started from this browser session" in admin.get(again.headers["Location"]).get_data(as_text=True)
    assert emu.oauth_stats()["oauth_code_exchanges"] == 1


def test_only_admins_connect_and_private_app_connectors_have_no_button(app, runtime, emu):
    oauth_id = oauth_connector(runtime, emu)
    private_id = make_connector(runtime, emu, name="private app")
    operator = signed_in(app, runtime, "operator")
    assert operator.get(f"/admin/connectors/{oauth_id}/connect").status_code == 403
    assert operator.get("/admin/connectors/oauth/callback?code=x&state=y").status_code == 403
    admin = signed_in(app, runtime, "admin", email="boss@example.com")
    assert "Connect with HubSpot" not in admin.get(f"/admin/connectors/{private_id}").get_data(as_text=True)
    r = admin.get(f"/admin/connectors/{private_id}/connect")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/admin/connectors/{private_id}")


def test_the_emulated_install_page_refuses_what_hubspot_refuses(emu):
    url = emu.base_url + "/oauth/authorize"
    good = {"client_id": OPTIONS.client_id, "redirect_uri": CALLBACK, "scope": "crm.objects.contacts.read",
            "state": "s"}
    assert requests.get(url, params=good, allow_redirects=False, timeout=5).status_code == 302
    for change in ({"client_id": "nope"}, {"redirect_uri": "https://elsewhere.example/cb"}, {"scope": ""}):
        assert requests.get(url, params={**good, **change}, allow_redirects=False, timeout=5).status_code == 400
