from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from hub.shared.media_links import MediaLinks

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def parts(url):
    query = parse_qs(urlsplit(url).query)
    return query["expires"][0], query["signature"][0]


def test_a_link_works_for_its_message_until_it_expires():
    links = MediaLinks("https://hub.example.com/", "secret-key")
    url = links.url(42, now=NOW)
    assert url.startswith("https://hub.example.com/media/42?expires=")
    expires, signature = parts(url)
    assert links.check(42, expires, signature, now=NOW) is None
    assert "signature" in links.check(43, expires, signature, now=NOW)
    assert "expired" in links.check(42, expires, signature, now=NOW + timedelta(days=7, seconds=1))
    assert "signature" in MediaLinks("https://hub.example.com/", "other-key").check(42, expires, signature, now=NOW)
    assert "incomplete" in links.check(42, "soon", signature, now=NOW)
