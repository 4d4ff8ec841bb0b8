"""Instagram messaging webhooks (tests/fixtures/instagram, Messenger Platform bodies) as
the hub's values: a test per fixture; parsing is pure."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from hub.channels.instagram.parse import parse
from hub.channels.instagram.types import Ignored, InstagramEvent
from hub.events.raw_webhooks import PayloadError
from tests.support.instagram import ANA, FIXTURES, IG_ID, fixture

AT = datetime.fromtimestamp(1765100101, tz=timezone.utc)


def event(name: str) -> InstagramEvent:
    parsed = parse(fixture(name))
    assert parsed.problems == ()
    (item,) = parsed.items
    assert isinstance(item, InstagramEvent), item
    assert (item.sender_id, item.account_id, item.timestamp) == (ANA, IG_ID, AT)
    assert item.contact_key == f"ig:{ANA}"
    return item


def ignored(name: str) -> Ignored:
    (item,) = parse(fixture(name)).items
    assert isinstance(item, Ignored), item
    return item


def mid(name: str) -> str:
    body = json.loads(fixture(name))["entry"][0]["messaging"][0]
    return (body.get("message") or body.get("postback") or body.get("reaction"))["mid"]


def test_every_fixture_has_a_test():
    names = {p.stem for p in FIXTURES.glob("*.json")}
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert names <= tested, f"fixtures without a test: {sorted(names - tested)}"


def test_message__text():
    e = event("message__text")
    assert (e.kind, e.type, e.text, e.mid) == ("message", "text", "Hi, is the blue sofa still available?",
                                               mid("message__text"))
    assert e.attachments == () and e.reply_to_mid is None and e.referral is None and e.button is None


@pytest.mark.parametrize("name, kind", [("message__image", "image"), ("message__video", "video"),
                                        ("message__audio", "audio"), ("message__file", "document")])
def test_media(name, kind):
    e = event(name)
    assert (e.kind, e.type, e.text) == ("message", kind, None)
    assert e.attachments[0]["url"].startswith("https://lookaside.fbsbx.com/")


def test_message__image():
    assert event("message__image").attachments[0]["type"] == "image"


def test_message__video():
    assert event("message__video").type == "video"


def test_message__audio():
    assert event("message__audio").type == "audio"


def test_message__file():
    assert event("message__file").attachments[0]["type"] == "file"


def test_message__share():
    e = event("message__share")
    assert (e.type, e.attachments[0]["type"]) == ("share", "share")


def test_message__story_mention():
    e = event("message__story_mention")
    assert (e.type, e.attachments[0]["type"]) == ("story_mention", "story_mention")


def test_message__story_reply():
    e = event("message__story_reply")
    assert (e.type, e.text) == ("story_reply", "Love this one! Price?")
    assert e.story == {"id": "17900000000000099",
                       "url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17900000000000099"}


def test_message__reply():
    e = event("message__reply")
    assert (e.type, e.text, e.reply_to_mid) == ("text", "Yes, this one", mid("message__text"))


def test_reaction__react():
    e = event("reaction__react")
    assert (e.kind, e.type, e.reply_to_mid) == ("reaction", "reaction", mid("message__text"))
    assert e.reaction == {"mid": mid("message__text"), "action": "react", "reaction": "love", "emoji": "\u2764\ufe0f"}


def test_reaction__unreact():
    e = event("reaction__unreact")
    assert e.reaction["action"] == "unreact" and e.reaction["emoji"] is None


def test_postback__button():
    e = event("postback__button")
    assert (e.kind, e.type, e.text, e.button) == ("postback", "interactive", "Talk to a person",
                                                  {"id": "HANDOFF", "title": "Talk to a person"})


def test_message__quick_reply():
    e = event("message__quick_reply")
    assert (e.kind, e.type, e.button) == ("message", "interactive", {"id": "topic_delivery", "title": "Delivery"})


def test_referral__ad():
    e = event("referral__ad")
    assert (e.kind, e.type, e.mid) == ("referral", "referral", None)
    assert e.referral["ad_id"] == "120200000000000001" and e.referral["ref"] == "spring-sale"
    assert e.referral["source"] == "ADS" and e.referral["ads_context_data"]["ad_title"] == "Spring sofa sale"


def test_referral__link():
    e = event("referral__link")
    assert e.referral == {"ref": "c-AbC123", "source": "IGME-SOURCE-LINK", "type": "OPEN_THREAD", "ad_id": None,
                          "ads_context_data": None}


def test_message__ad_referral():
    e = event("message__ad_referral")
    assert (e.type, e.text, e.referral["ad_id"]) == ("text", "Is this still on sale?", "120200000000000001")


def test_message__echo():
    """The account's own message, keyed on the customer it went to."""
    e = event("message__echo")
    assert (e.kind, e.sender_id, e.account_id, e.type, e.text) == (
        "echo", "1234567890123456", "17841400000000001", "text", "Yes, it is!")


def test_message__deleted():
    e = event("message__deleted")
    assert (e.kind, e.type, e.mid, e.reply_to_mid) == ("deleted", "revoke", mid("message__text"), mid("message__text"))


def test_message__unsupported():
    assert event("message__unsupported").type == "unsupported"


def test_read__receipt():
    assert ignored("read__receipt").kind == "read"


def test_comments__new():
    item = ignored("comments__new")
    assert item.kind == "changes" and "comments" in item.reason


@pytest.mark.parametrize("body, problem", [
    (b"not json", "not JSON"), (b"[]", "JSON object"), (b'{"object": "page", "entry": []}', "not 'instagram'"),
    (b'{"object": "instagram"}', "entry is not a list"),
])
def test_bodies_that_are_not_instagram_webhooks_are_refused(body, problem):
    with pytest.raises(PayloadError, match=problem):
        parse(body)


def test_a_malformed_event_is_refused_by_name_and_the_others_kept():
    body = json.loads(fixture("message__text"))
    good = body["entry"][0]["messaging"][0]
    body["entry"][0]["messaging"] = [{**good, "sender": {}}, good, {**good, "timestamp": "soon"}]
    parsed = parse(json.dumps(body).encode())
    assert len(parsed.items) == 1
    assert parsed.problems == ("entry[0].messaging[0]: sender.id is not an id",
                               "entry[0].messaging[2]: timestamp is not a time in milliseconds")
