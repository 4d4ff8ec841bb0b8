"""No secret ever reaches an admin page: every page reachable by following the admin's
own links, as every role, plus the responses to failed forms, Test connection and the
mapping preview. (The verify token and 360dialog header token are shown to admins on the
channel page by design: they are pasted into the provider's dashboard.)"""
from __future__ import annotations

import re
from collections import deque

from sqlalchemy import select

from hub.platform.db import utcnow
from hub.events.outbox import emit
from hub.crm.worker import Worker
from hub.channels.settings import secrets_of
from hub.models import Channel, ConnectorRecord, User
from hub.models.users import create_api_token
from tests.conftest import ENCRYPTION_KEY
from tests.support.admin import PASSWORD, post, signed_in
from tests.support.factories import SECRET, webhook_connector
from tests.support.receiver import Receiver, Reply
from tests.support.whatsapp import fixture, make_channel, post_signed

HREF = re.compile(r'href="(/admin/[^"#]*)"')
SKIP = ("/admin/language/", "/admin/media/")
CLOUD_TOKEN = "EAAG-cloud-access-token-0001"
D360_KEY = "d360-api-key-very-secret-0002"
D360_HOOK = "d360-webhook-header-token-0003"


def crawl(client, start="/admin/", limit=200) -> dict[str, str]:
    seen: dict[str, str] = {}
    queue = deque([start])
    while queue and len(seen) < limit:
        url = queue.popleft().replace("&amp;", "&")
        if url in seen or url.startswith(SKIP):
            continue
        response = client.get(url)
        assert response.status_code in (200, 302, 403), (url, response.status_code)
        seen[url] = response.get_data(as_text=True)
        queue.extend(HREF.findall(seen[url]))
    return seen


def test_no_secret_in_any_page_for_any_role(app, runtime):
    _, key = make_channel(runtime, access_token=CLOUD_TOKEN)
    make_channel(runtime, provider="360dialog", phone_number_id="2200000000000003", name="Relay",
                 d360_api_key=D360_KEY, webhook_token=D360_HOOK)
    with Receiver(lambda req, n: Reply(400, body=('{"echo":"' + SECRET + '"}').encode())) as receiver:
        connector = webhook_connector(runtime, receiver.url, name="echoing")
        post_signed(app.test_client(), key, fixture("text__plain"))
        post_signed(app.test_client(), key, fixture("image__caption"))
        with runtime.db.scope() as s:
            emit(s, "contact.opted_out", {"contact": {"id": 1}, "reason": "stop"}, now=utcnow())
        Worker(runtime.db, runtime.vault, runtime.config).drain()

        admin = signed_in(app, runtime, "admin")
        with runtime.db.scope() as s:
            api_token = create_api_token(s, email="admin@example.com", name="sweep", now=utcnow())
            channels = list(s.scalars(select(Channel).order_by(Channel.id)))
            hashes = [u.password_hash for u in s.scalars(select(User))]
        shown_to_admins = [secrets_of(c, runtime.vault)[k] for c in channels
                           for k in ("verify_token", "webhook_token") if k in secrets_of(c, runtime.vault)]
        assert len(shown_to_admins) == 3
        never = [CLOUD_TOKEN, D360_KEY, "test-app-secret-0123456789", SECRET, api_token, PASSWORD,
                 ENCRYPTION_KEY, "test-secret-key", *hashes]

        pages = crawl(admin)
        # what a failed form, Test connection and the preview answer
        pages["edit-channel"] = post(admin, f"/admin/channels/{channels[0].id}/edit",
                                     {"name": "", "provider": "cloud", "phone_number_id": "x",
                                      "access_token": CLOUD_TOKEN}, page="/admin/").get_data(as_text=True)
        pages["edit-connector"] = post(admin, f"/admin/connectors/{connector}/edit",
                                       {"name": "echoing", "url": "bad", "secret": SECRET,
                                        "event_types": ["message.received"]}, page="/admin/").get_data(as_text=True)
        pages["check"] = post(admin, f"/admin/connectors/{connector}/check", {}, page="/admin/",
                              headers={"HX-Request": "true"}).get_data(as_text=True)
        for role in ("operator", "viewer"):
            for url, html in crawl(signed_in(app, runtime, role)).items():
                pages[f"{role}:{url}"] = html
                for value in shown_to_admins:
                    assert value not in html, f"{role} sees a channel token on {url}"

    assert len(pages) > 40  # the crawl reached the whole admin
    for expected in ("/admin/channels/1", f"/admin/connectors/{connector}/preview", "/admin/deliveries/1",
                     "/admin/inbox/1", "/admin/users", f"/admin/connectors/{connector}/edit"):
        assert expected in pages, expected
    assert "[redacted]" in "".join(pages.values())  # the echoed secret was there, redacted
    for url, html in pages.items():
        for value in never:
            assert value not in html, f"a secret appears on {url}"
    with runtime.db.scope() as s:
        assert s.get(ConnectorRecord, connector).name == "echoing"
