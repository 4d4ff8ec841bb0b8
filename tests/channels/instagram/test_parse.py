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


def test_text():
    e = event("text")
    assert (e.kind, e.type, e.text, e.mid) == ("message", "text", "Hi, is the blue sofa still available?", mid("text"))
    assert e.attachments == () and e.reply_to_mid is None and e.referral is None and e.button is None


@pytest.mark.parametrize("name, kind", [("image", "image"), ("video", "video"), ("audio", "audio"),
                                        ("file", "document")])
def test_media(name, kind):
    e = event(name)
    assert (e.kind, e.type, e.text) == ("message", kind, None)
    assert e.attachments[0]["url"].startswith("https://lookaside.fbsbx.com/")


def test_image():
    assert event("image").attachments[0]["type"] == "image"


def test_video():
    assert event("video").type == "video"


def test_audio():
    assert event("audio").type == "audio"


def test_file():
    assert event("file").attachments[0]["type"] == "file"


def test_share():
    e = event("share")
    assert (e.type, e.attachments[0]["type"]) == ("share", "share")


def test_story_mention():
    e = event("story_mention")
    assert (e.type, e.attachments[0]["type"]) == ("story_mention", "story_mention")


def test_story_reply():
    e = event("story_reply")
    assert (e.type, e.text) == ("story_reply", "Love this one! Price?")
    assert e.story == {"id": "17900000000000099",
                       "url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17900000000000099"}


def test_reply():
    e = event("reply")
    assert (e.type, e.text, e.reply_to_mid) == ("text", "Yes, this one", mid("text"))


def test_reaction_react():
    e = event("reaction_react")
    assert (e.kind, e.type, e.reply_to_mid) == ("reaction", "reaction", mid("text"))
    assert e.reaction == {"mid": mid("text"), "action": "react", "reaction": "love", "emoji": "\u2764\ufe0f"}


def test_reaction_unreact():
    e = event("reaction_unreact")
    assert e.reaction["action"] == "unreact" and e.reaction["emoji"] is None


def test_postback():
    e = event("postback")
    assert (e.kind, e.type, e.text, e.button) == ("postback", "interactive", "Talk to a person",
                                                  {"id": "HANDOFF", "title": "Talk to a person"})


def test_quick_reply():
    e = event("quick_reply")
    assert (e.kind, e.type, e.button) == ("message", "interactive", {"id": "topic_delivery", "title": "Delivery"})


def test_referral_ad():
    e = event("referral_ad")
    assert (e.kind, e.type, e.mid) == ("referral", "referral", None)
    assert e.referral["ad_id"] == "120200000000000001" and e.referral["ref"] == "spring-sale"
    assert e.referral["source"] == "ADS" and e.referral["ads_context_data"]["ad_title"] == "Spring sofa sale"


def test_referral_link():
    e = event("referral_link")
    assert e.referral == {"ref": "c-AbC123", "source": "IGME-SOURCE-LINK", "type": "OPEN_THREAD", "ad_id": None,
                          "ads_context_data": None}


def test_message_with_ad_referral():
    e = event("message_with_ad_referral")
    assert (e.type, e.text, e.referral["ad_id"]) == ("text", "Is this still on sale?", "120200000000000001")


def test_echo():
    """The account's own message, keyed on the customer it went to."""
    e = event("echo")
    assert (e.kind, e.sender_id, e.account_id, e.type, e.text) == (
        "echo", "1234567890123456", "17841400000000001", "text", "Yes, it is!")


def test_deleted():
    e = event("deleted")
    assert (e.kind, e.type, e.mid, e.reply_to_mid) == ("deleted", "revoke", mid("text"), mid("text"))


def test_unsupported():
    assert event("unsupported").type == "unsupported"


def test_read():
    assert ignored("read").kind == "read"


def test_comments():
    item = ignored("comments")
    assert item.kind == "changes" and "comments" in item.reason


@pytest.mark.parametrize("body, problem", [
    (b"not json", "not JSON"), (b"[]", "JSON object"), (b'{"object": "page", "entry": []}', "not 'instagram'"),
    (b'{"object": "instagram"}', "entry is not a list"),
])
def test_bodies_that_are_not_instagram_webhooks_are_refused(body, problem):
    with pytest.raises(PayloadError, match=problem):
        parse(body)


def test_a_malformed_event_is_refused_by_name_and_the_others_kept():
    body = json.loads(fixture("text"))
    good = body["entry"][0]["messaging"][0]
    body["entry"][0]["messaging"] = [{**good, "sender": {}}, good, {**good, "timestamp": "soon"}]
    parsed = parse(json.dumps(body).encode())
    assert len(parsed.items) == 1
    assert parsed.problems == ("entry[0].messaging[0]: sender.id is not an id",
                               "entry[0].messaging[2]: timestamp is not a time in milliseconds")
