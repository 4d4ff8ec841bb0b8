"""GET /l/<slug>: the visit recorded, the code minted, the redirect; /t.js; bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from hub.shared.config_errors import ConfigError
from hub.platform.db import utcnow
from hub.models import TrackedLink, Visit
from hub.shared.security import hmac_sha256_hex
from hub.tracking.codes import is_visit_code
from hub.tracking.visits import ga_client_id, record_visit, visit_fields
from tests.conftest import make_config
from tests.support.tracking import make_link, prefilled, visit
from tests.support.whatsapp import make_channel
from tests.support.paths import ROOT


@pytest.fixture
def link(runtime):
    channel_id, _ = make_channel(runtime)
    return make_link(runtime, channel_id)


def visits(runtime) -> list[Visit]:
    with runtime.db.scope() as session:
        return list(session.scalars(select(Visit).order_by(Visit.id)))


def test_a_visit_is_recorded_and_redirected_to_wa_me_with_its_code(client, runtime, link):
    client.set_cookie("_ga", "GA1.2.1234567890.1700000000")
    client.set_cookie("_ym_uid", "1700000000123456789")
    r = client.get("/l/spring-sale", query_string={
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_content": "banner-1",
        "utm_term": "sofa", "gclid": "EAIaIQobChMI", "yclid": "7034", "fbclid": "IwAR0x"},
        headers={"Referer": "https://www.google.com/", "User-Agent": "Mozilla/5.0 (iPhone)"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "wa.me", "/15550001111")
    text = parse_qs(location.query)["text"][0]
    code = text.removeprefix("Hello! My request number: ")
    assert is_visit_code(code)
    assert r.headers["Cache-Control"] == "no-store"
    [v] = visits(runtime)
    assert (v.link_id, v.code, v.live_code) == (link, code, code)
    assert (v.utm_source, v.utm_medium, v.utm_campaign, v.utm_content, v.utm_term) == \
        ("google", "cpc", "spring", "banner-1", "sofa")
    assert (v.gclid, v.yclid, v.fbclid) == ("EAIaIQobChMI", "7034", "IwAR0x")
    assert v.ga_client_id == "1234567890.1700000000" and v.ym_uid == "1700000000123456789"
    assert v.referrer == "https://www.google.com/" and v.user_agent == "Mozilla/5.0 (iPhone)"
    assert v.ip_hash and "203.0.113.7" not in json.dumps({c: str(getattr(v, c)) for c in Visit.__table__.columns.keys()})
    salt = client.application.extensions["hub.tracking.ip_salt"]
    assert v.ip_hash == hmac_sha256_hex(salt.encode(), b"203.0.113.7")


def test_each_visit_gets_its_own_code(client, runtime, link):
    codes = {visit(client)[1] for _ in range(30)}
    assert len(codes) == 30 and None not in codes
    assert len(visits(runtime)) == 30


def test_tags_from_t_js_landing_page_and_its_referrer(client, runtime, link):
    r, _ = visit(client, lp="https://shop.example/sofas?utm_source=yandex&utm_medium=cpc&yclid=99",
                 ref="https://yandex.ru/", utm_campaign="from-query", _ga="GA1.1.555.666", _ym_uid="42")
    assert r.status_code == 302
    [v] = visits(runtime)
    assert v.landing_page.startswith("https://shop.example/sofas") and v.referrer == "https://yandex.ru/"
    assert (v.utm_source, v.utm_medium, v.utm_campaign, v.yclid) == ("yandex", "cpc", "from-query", "99")
    assert (v.ga_client_id, v.ym_uid) == ("555.666", "42")


def test_tags_fall_back_to_the_referer_url(client, runtime, link):
    client.get("/l/spring-sale", headers={"Referer": "https://shop.example/?utm_source=vk&utm_campaign=may"})
    [v] = visits(runtime)
    assert (v.utm_source, v.utm_campaign, v.landing_page) == ("vk", "may", None)


def test_a_static_link_redirects_with_its_fixed_code(client, runtime):
    channel_id, _ = make_channel(runtime)
    make_link(runtime, channel_id, slug="flyer", static_code="flyer 25")
    first, second = client.get("/l/flyer"), client.get("/l/flyer")
    assert prefilled(first) == prefilled(second) == "Hello! My request number: FLYER25"
    assert [(v.code, v.live_code) for v in visits(runtime)] == [("FLYER25", None)] * 2


@pytest.mark.parametrize("slug", ["nope", "SPRING-SALE-X", "..%2f..%2fetc", "a/b/c", "<script>alert(1)</script>",
                                  "x" * 300, "%00"])
def test_unknown_or_bogus_slug_is_a_404_page_and_nothing_is_recorded(client, runtime, link, slug):
    r = client.get(f"/l/{slug}")
    assert r.status_code == 404 and r.mimetype == "text/html"
    body = r.get_data(as_text=True)
    assert "This link does not exist" in body and "<script>alert" not in body
    assert visits(runtime) == []


def test_the_slug_is_case_insensitive(client, runtime, link):
    assert client.get("/l/Spring-Sale").status_code == 302


def test_an_inactive_link_is_a_404(client, runtime, link):
    with runtime.db.scope() as session:
        session.get(TrackedLink, link).active = False
    assert client.get("/l/spring-sale").status_code == 404
    assert visits(runtime) == []


def test_head_redirects_without_recording(client, runtime, link):
    r = client.head("/l/spring-sale")
    assert r.status_code == 302 and r.headers["Location"] == "https://wa.me/15550001111"
    assert client.head("/l/nope").status_code == 404
    assert visits(runtime) == []


@pytest.mark.parametrize("agent", [
    "WhatsApp/2.23.20.0 A", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Mozilla/5.0 (compatible; YandexBot/3.0)",
])
def test_link_previews_and_crawlers_are_redirected_without_a_visit(client, runtime, link, agent):
    r = client.get("/l/spring-sale", headers={"User-Agent": agent})
    assert r.status_code == 302 and r.headers["Location"] == "https://wa.me/15550001111"
    assert visits(runtime) == []


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[FBAN/FBIOS;FBAV/460.0.0.36.105;FBBV/590000000;FBDV/iPhone15,2]",
    "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36 "
    "YaBrowser/24.4.0.0",
])
def test_browsers_are_visits(client, runtime, link, agent):
    assert client.get("/l/spring-sale", headers={"User-Agent": agent}).status_code == 302
    assert len(visits(runtime)) == 1


def test_oversize_query_is_capped_and_still_redirects(client, runtime, link):
    huge = "A" * 20000
    r = client.get("/l/spring-sale", query_string={
        "utm_source": huge, "utm_campaign": "x" * 300, "gclid": huge, "lp": "https://e.example/" + huge,
        "ref": huge, "_ga": huge, "_ym_uid": "1" * 100, **{f"junk{i}": "y" * 100 for i in range(200)}},
        headers={"User-Agent": "U" * 5000})
    assert r.status_code == 302
    [v] = visits(runtime)
    assert len(v.utm_source) == 255 and len(v.utm_campaign) == 255 and len(v.gclid) == 255
    assert len(v.landing_page) == 2048 and len(v.referrer) == 2048 and len(v.user_agent) == 512
    assert v.ga_client_id is None and v.ym_uid is None  # not the shape of those cookies


def test_control_characters_never_reach_the_database(client, runtime, link):
    r = client.get("/l/spring-sale?utm_source=go%00ogle%0d%0a&utm_medium=%1bcpc&ref=https://x%00.example/")
    assert r.status_code == 302
    [v] = visits(runtime)
    assert (v.utm_source, v.utm_medium, v.referrer) == ("google", "cpc", "https://x.example/")


def test_scripts_in_tags_and_referrer_are_escaped_on_every_page(client, runtime, link):
    attack = '"><script>alert(document.cookie)</script>'
    r = client.get("/l/spring-sale", query_string={"utm_source": attack, "utm_content": "<img src=x onerror=alert(1)>"},
                   headers={"Referer": "javascript:alert(1)//" + attack})
    assert r.status_code == 302
    body = r.get_data(as_text=True)
    assert "<script>" not in body and "<img" not in body and "onerror" not in body.replace("onerror=", "")
    assert 'href="https://wa.me/15550001111?text=' in body  # the fallback link, escaped
    [v] = visits(runtime)
    assert v.utm_source == attack  # stored as sent (bounded); escaping is the page's job
    not_found = client.get("/l/" + attack.replace("/", "")).get_data(as_text=True)
    assert "<script>" not in not_found


def test_the_prefilled_text_is_url_encoded(client, runtime):
    channel_id, _ = make_channel(runtime)
    make_link(runtime, channel_id, slug="ru", text_template="Здравствуйте! Заявка {code} & «скидка» #1?")
    r = client.get("/l/ru")
    location = r.headers["Location"]
    assert " " not in location
    query = urlsplit(location).query
    assert query.count("=") == 1 and "&" not in query
    text = parse_qs(query)["text"][0]
    assert text.startswith("Здравствуйте! Заявка ") and text.endswith(" & «скидка» #1?")


def test_an_expired_code_is_reused_but_a_live_one_never(runtime, link):
    now = utcnow()
    window = timedelta(days=7)
    codes = iter(["A2B3C4"] * 3)
    first = record_visit(runtime.db, "spring-sale", {}, now=now - timedelta(days=8), window=window,
                         mint=lambda: next(codes))
    # The old visit is past the window: its code is freed and given again.
    second = record_visit(runtime.db, "spring-sale", {}, now=now, window=window, mint=lambda: next(codes))
    assert first.code == second.code == "A2B3C4"
    # Now the code is live: a collision draws another one.
    codes = iter(["A2B3C4", "D5E6F7"])
    third = record_visit(runtime.db, "spring-sale", {}, now=now, window=window, mint=lambda: next(codes))
    assert third.code == "D5E6F7"
    with runtime.db.scope() as session:
        rows = session.execute(select(Visit.code, Visit.live_code).order_by(Visit.id)).all()
    assert [tuple(r) for r in rows] == [("A2B3C4", None), ("A2B3C4", "A2B3C4"), ("D5E6F7", "D5E6F7")]


def test_visit_fields_are_pure_and_never_keep_the_address():
    fields = visit_fields({"utm_source": "g"}, {}, referer=None, user_agent=None, ip="198.51.100.1", salt="s")
    assert "198.51.100.1" not in json.dumps(fields)
    again = visit_fields({}, {}, referer=None, user_agent=None, ip="198.51.100.1", salt="s")
    other_salt = visit_fields({}, {}, referer=None, user_agent=None, ip="198.51.100.1", salt="t")
    assert fields["ip_hash"] == again["ip_hash"] != other_salt["ip_hash"]


@pytest.mark.parametrize("cookie, client_id", [
    ("GA1.2.1234567890.1700000000", "1234567890.1700000000"),
    ("GA1.1.555.666", "555.666"),
    ("1234.5678", "1234.5678"),
    ("<script>", None),
    ("", None),
])
def test_ga_client_id(cookie, client_id):
    assert ga_client_id(cookie) == client_id


def test_t_js_is_served_as_javascript_and_cacheable(client):
    r = client.get("/t.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "max-age" in r.headers["Cache-Control"]
    assert "wa\\.me" in r.get_data(as_text=True)
    assert client.get("/t.js", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304


def test_production_needs_an_ip_salt(database_url, tmp_path):
    from hub.app import create_app

    config = make_config(database_url, tmp_path, mode="production")
    with pytest.raises(ConfigError, match="tracking.ip_salt"):
        create_app(config)
    salted = make_config(database_url, tmp_path, mode="production", tracking__ip_salt="pepper")
    app = create_app(salted)
    assert app.extensions["hub.tracking.ip_salt"] == "pepper"
    app.extensions["hub"].db.dispose()


def test_development_generates_the_salt_once(runtime, app, tmp_path):
    from hub.app import create_app

    salt = app.extensions["hub.tracking.ip_salt"]
    assert len(salt) >= 32
    assert create_app(runtime=runtime).extensions["hub.tracking.ip_salt"] == salt


JS_HARNESS = r"""
const fs = require("fs");
const source = fs.readFileSync(process.argv[2], "utf8");
const anchors = [
  {href: "https://wa.me/15550001111?text=Hi", attrs: {}},
  {href: "https://api.whatsapp.com/send?phone=15550001111", attrs: {"data-hub-link": "other"}},
  {href: "https://example.com/contacts", attrs: {}},
];
for (const a of anchors) {
  a.nodeType = 1; a.tagName = "A";
  a.getAttribute = (n) => n === "href" ? a.href : (n in a.attrs ? a.attrs[n] : null);
  a.setAttribute = (n, v) => { if (n === "href") a.href = v; else a.attrs[n] = v; };
}
const store = {};
const page = JSON.parse(process.argv[3]);
global.window = {
  location: {search: page.search, href: page.href},
  sessionStorage: {getItem: (k) => store[k] || null, setItem: (k, v) => { store[k] = v; }},
};
global.document = {
  currentScript: {src: "https://hub.example.com/t.js?v=2", getAttribute: (n) => n === "data-link" ? "spring-sale" : null},
  cookie: "_ga=GA1.2.111.222; _ym_uid=1700000000123",
  referrer: "https://www.google.com/",
  readyState: "complete",
  querySelectorAll: () => anchors,
  addEventListener: () => {},
};
eval(source);
console.log(JSON.stringify({hrefs: anchors.map((a) => a.href), stored: store}));
"""


def run_t_js(tmp_path, search: str, href: str) -> dict:
    harness = tmp_path / "harness.js"
    harness.write_text(JS_HARNESS)
    script = ROOT / "hub" / "web" / "static" / "t.js"
    page = json.dumps({"search": search, "href": href})
    return json.loads(subprocess.run(["node", str(harness), str(script), page], capture_output=True, text=True,
                                     check=True, timeout=30).stdout)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the site script")


@needs_node
def test_t_js_rewrites_whatsapp_links_with_the_page_tags(tmp_path):
    out = run_t_js(tmp_path, "?utm_source=google&utm_medium=cpc&utm_campaign=%3Cspring%3E&gclid=G1&x=1",
                   "https://shop.example/sofas?utm_source=google&utm_medium=cpc")
    tracked, other, untouched = out["hrefs"]
    assert untouched == "https://example.com/contacts"
    assert tracked.startswith("https://hub.example.com/l/spring-sale?")
    assert other.startswith("https://hub.example.com/l/other?")
    query = parse_qs(urlsplit(tracked).query)
    assert query["utm_source"] == ["google"] and query["utm_campaign"] == ["<spring>"] and query["gclid"] == ["G1"]
    assert query["lp"] == ["https://shop.example/sofas?utm_source=google&utm_medium=cpc"]
    assert query["ref"] == ["https://www.google.com/"]
    assert query["_ga"] == ["GA1.2.111.222"] and query["_ym_uid"] == ["1700000000123"]
    assert "x" not in query
    assert json.loads(out["stored"]["hub_touch"])["utm_source"] == "google"


@needs_node
def test_t_js_keeps_the_tracked_url_under_the_servers_limit(tmp_path):
    long_page = "https://shop.example/" + "диваны-" * 300 + "?utm_source=yandex&utm_campaign=" + "весна" * 100
    out = run_t_js(tmp_path, "?utm_source=yandex&utm_campaign=" + "%D0%B2" * 400, long_page)
    tracked = out["hrefs"][0]
    assert len(tracked) <= 3500
    query = parse_qs(urlsplit(tracked).query)
    assert query["utm_source"] == ["yandex"] and len(query["utm_campaign"][0]) == 200
    assert "lp" not in query


def _visit_from_behind_a_proxy(runtime, tmp_path, database_url, trusted_proxies):
    from hub.app import create_app
    from hub.platform.runtime import Runtime

    config = make_config(database_url, tmp_path, web__trusted_proxies=trusted_proxies)
    app = create_app(runtime=Runtime(config=config, db=runtime.db, vault=runtime.vault))
    r = app.test_client().get("/l/spring-sale", headers={"X-Forwarded-For": "198.51.100.23"},
                              environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert r.status_code == 302
    salt = app.extensions["hub.tracking.ip_salt"]
    return visits(runtime)[-1].ip_hash, salt


def test_behind_a_trusted_proxy_the_visitor_address_comes_from_x_forwarded_for(runtime, tmp_path, database_url,
                                                                                 link):
    ip_hash, salt = _visit_from_behind_a_proxy(runtime, tmp_path, database_url, 1)
    assert ip_hash == hmac_sha256_hex(salt.encode(), b"198.51.100.23")


def test_without_trusted_proxies_x_forwarded_for_is_ignored(runtime, tmp_path, database_url, link):
    ip_hash, salt = _visit_from_behind_a_proxy(runtime, tmp_path, database_url, 0)
    assert ip_hash == hmac_sha256_hex(salt.encode(), b"10.0.0.5")


def test_a_visit_answered_in_front_of_flask_keeps_the_apps_headers_and_sets_no_cookie(client, runtime, link):
    """The busiest route is answered before Flask (VisitLane): the same nosniff and
    no-store headers as the Flask answers, no session cookie, the escaped fallback link."""
    client.set_cookie("session", "not-a-valid-signed-cookie")
    r = client.get("/l/spring-sale", query_string={"utm_source": "x"})
    assert r.status_code == 302 and r.headers["X-Content-Type-Options"] == "nosniff"
    assert (r.headers["Cache-Control"], r.headers["X-Robots-Tag"], r.headers["Referrer-Policy"]) == \
        ("no-store", "noindex", "no-referrer")
    assert "Set-Cookie" not in r.headers
    assert int(r.headers["Content-Length"]) == len(r.data)
    assert r.headers["Location"].replace("&", "&amp;") in r.get_data(as_text=True)
    missing = client.get("/l/no-such-link")
    assert missing.status_code == 404 and missing.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in missing.headers and len(visits(runtime)) == 1
