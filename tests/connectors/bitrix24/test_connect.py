"""Connect with Bitrix24: the portal's authorization page sends the admin's browser back
to the hub's callback with a code (valid 30 seconds), exchanged at once for the app's
tokens."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from tests.conftest import make_config
from tests.connectors.bitrix24.conftest import oauth_settings
from tests.support.admin import signed_in
from tests.support.connect import BASE_URL, CALLBACK, authorize_in_browser, stored



@pytest.fixture
def config(database_url, tmp_path):
    return make_config(database_url, tmp_path, base_url=BASE_URL)


def not_connected(runtime, portal) -> int:
    portal.portal.redirect_uri = CALLBACK  # the app's redirect URL in the portal
    settings = oauth_settings(portal, access_token="", refresh_token="")
    with runtime.db.scope() as s:
        return create_connector(s, runtime.vault, kind="bitrix24", name="b24", settings=settings, now=utcnow()).id


def test_connect_with_bitrix24_gets_the_apps_tokens(app, runtime, portal):
    cid = not_connected(runtime, portal)
    admin = signed_in(app, runtime, "admin")
    page = admin.get(f"/admin/connectors/{cid}").get_data(as_text=True)
    assert "Connect with Bitrix24" in page and CALLBACK in page
    assert "not connected to Bitrix24 yet" in admin.post(
        f"/admin/connectors/{cid}/check", headers={"HX-Request": "1"},
        data={"csrf_token": _csrf(page)}).get_data(as_text=True)
    start = admin.get(f"/admin/connectors/{cid}/connect")
    url = urlsplit(start.headers["Location"])
    assert url.path == "/oauth/authorize/" and parse_qs(url.query)["client_id"] == [portal.portal.client_id]
    back = admin.get(authorize_in_browser(start.headers["Location"]))
    shown = admin.get(back.headers["Location"]).get_data(as_text=True)
    assert "Connected: Connected to" in shown
    settings, health = stored(runtime, cid)
    assert health == "ok" and not settings.get("authorization_code")
    assert settings["access_token"] == portal.portal.access_token
    assert settings["refresh_token"] == portal.portal.refresh_token
    assert portal.portal.stats["code_exchanges"] == 1
    assert settings["access_token"] not in shown and settings["refresh_token"] not in shown


def test_a_stale_code_says_to_connect_again(app, runtime, portal):
    cid = not_connected(runtime, portal)
    admin = signed_in(app, runtime, "admin")
    start = admin.get(f"/admin/connectors/{cid}/connect")
    back_path = authorize_in_browser(start.headers["Location"])
    for code in portal.portal.codes.values():
        code["at"] -= 31  # the admin took longer than Bitrix24's 30 seconds
    back = admin.get(back_path)
    shown = admin.get(back.headers["Location"]).get_data(as_text=True)
    assert "refused the authorization code" in shown and "press Connect with Bitrix24 again" in shown
    settings, health = stored(runtime, cid)
    assert health == "unhealthy" and not settings.get("access_token")


def test_access_from_another_portal_is_refused(runtime, portal):
    from hub.crm.store import build_connector

    cid = not_connected(runtime, portal)
    with runtime.db.scope() as s:
        record = s.get(ConnectorRecord, cid)
        s.expunge(record)
    connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=5)
    with pytest.raises(ValueError, match="granted by portal 'evil.bitrix24.com'"):
        connector.accept_authorization({"code": "c", "domain": "evil.bitrix24.com"}, CALLBACK)
    with pytest.raises(ValueError, match="did not grant access"):
        connector.accept_authorization({"error": "access_denied"}, CALLBACK)


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
