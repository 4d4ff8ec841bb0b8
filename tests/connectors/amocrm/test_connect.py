"""Connect with amoCRM: the admin's browser goes to amoCRM's authorization page and
comes back to the hub's callback with a code, which the hub exchanges at once."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.amocrm.emulator import CLIENT_ID, CLIENT_SECRET
from tests.conftest import make_config
from tests.connectors.amocrm.conftest import add_connector, instance, oauth_settings
from tests.support.admin import signed_in
from tests.support.connect import BASE_URL, CALLBACK, authorize_in_browser, stored



@pytest.fixture
def config(database_url, tmp_path):
    return make_config(database_url, tmp_path, base_url=BASE_URL)


@pytest.fixture
def integration(amo):
    """The integration's redirect URI in amoCRM is the hub's callback."""
    amo.emulator.oauth.clients[CLIENT_ID] = (CLIENT_SECRET, CALLBACK)
    return amo


def not_connected(runtime, amo, *, name: str = "amo", **overrides) -> int:
    settings = {"authorization_code": None, "authorize_url": amo.base_url + "/oauth", **overrides}
    return add_connector(runtime, oauth_settings(amo, **settings), name=name)


def test_an_oauth_connector_without_a_code_is_saved_and_says_how_to_connect(runtime, integration):
    result = instance(runtime, not_connected(runtime, integration)).check()
    assert not result.ok and "not connected to amoCRM yet: press Connect with amoCRM" in result.message


def test_connect_with_amocrm_exchanges_the_code_and_deliveries_can_start(app, runtime, integration):
    cid = not_connected(runtime, integration)
    admin = signed_in(app, runtime, "admin")
    page = admin.get(f"/admin/connectors/{cid}").get_data(as_text=True)
    assert "Connect with amoCRM / Kommo" in page and CALLBACK in page
    start = admin.get(f"/admin/connectors/{cid}/connect")
    url = urlsplit(start.headers["Location"])
    assert url.path == "/oauth" and parse_qs(url.query)["client_id"] == [CLIENT_ID]
    assert parse_qs(url.query)["mode"] == ["popup"] and parse_qs(url.query)["state"]
    back = admin.get(authorize_in_browser(start.headers["Location"]))
    shown = admin.get(back.headers["Location"]).get_data(as_text=True)
    assert "Connected: connected to amoCRM account" in shown
    settings, health = stored(runtime, cid)
    assert health == "ok" and settings["redirect_uri"] == CALLBACK and not settings.get("authorization_code")
    assert settings["access_token"] and settings["refresh_token"]
    assert settings["access_token"] not in shown and settings["refresh_token"] not in shown
    assert integration.emulator.oauth.stats["code_exchanges"] == 1


def test_a_declined_authorization_stores_nothing(app, runtime, integration):
    cid = not_connected(runtime, integration)
    integration.emulator.oauth.approve = False
    admin = signed_in(app, runtime, "admin")
    start = admin.get(f"/admin/connectors/{cid}/connect")
    back = admin.get(authorize_in_browser(start.headers["Location"]))
    assert "amoCRM did not grant access (access_denied)" in admin.get(back.headers["Location"]).get_data(as_text=True)
    settings, _ = stored(runtime, cid)
    assert not settings.get("authorization_code") and not settings.get("refresh_token")


def test_access_granted_for_another_account_is_refused(runtime, integration):
    cid = not_connected(runtime, integration, base_url="https://acme.amocrm.ru", authorize_url="")
    connector = instance(runtime, cid)
    assert connector.authorize_url(CALLBACK, "s").startswith("https://www.amocrm.ru/oauth?client_id=")
    with pytest.raises(ValueError, match="granted for account 'other'"):
        connector.accept_authorization({"code": "x", "referer": "other.amocrm.ru"}, CALLBACK)
    assert connector.accept_authorization({"code": "x", "referer": "acme.amocrm.ru"}, CALLBACK) == {
        "authorization_code": "x", "redirect_uri": CALLBACK}
    kommo = instance(runtime, not_connected(runtime, integration, name="kommo", base_url="https://acme.kommo.com",
                                            authorize_url=""))
    assert kommo.authorize_url(CALLBACK, "s").startswith("https://www.kommo.com/oauth?")


def test_long_lived_token_connectors_have_no_connect_button(app, runtime, amo):
    from tests.connectors.amocrm.conftest import long_lived_settings

    cid = add_connector(runtime, long_lived_settings(amo))
    admin = signed_in(app, runtime, "admin")
    assert "Connect with" not in admin.get(f"/admin/connectors/{cid}").get_data(as_text=True)
