"""The roistat_visit cookie (or t.js's roistat_visit argument) of a tracked visit rides
into the conversation's lead source, where the Roistat connector names the visit."""
from __future__ import annotations

from sqlalchemy import select

from hub.models import Conversation, Visit
from hub.tracking.visits import visit_fields
from tests.support.tracking import make_link, prefilled, text_message
from tests.support.whatsapp import make_channel, post_signed


def fields_of(args, cookies):
    return visit_fields(args, cookies, referer=None, user_agent=None, ip=None, salt="s")["roistat_visit"]


def test_the_visit_number_comes_from_the_cookie_or_tjs_and_only_as_digits():
    assert fields_of({}, {"roistat_visit": "4336465"}) == "4336465"
    assert fields_of({"roistat_visit": "77"}, {}) == "77"
    assert fields_of({"roistat_visit": "<b>1</b>"}, {}) is None and fields_of({}, {"roistat_visit": "1" * 40}) is None


def test_the_visit_number_reaches_the_lead_source(client, runtime):
    channel_id, key = make_channel(runtime)
    make_link(runtime, channel_id)
    client.set_cookie("roistat_visit", "4336465")
    response = client.get("/l/spring-sale")
    assert response.status_code == 302
    assert post_signed(client, key, text_message(prefilled(response))).status_code == 200
    with runtime.db.scope() as session:
        assert session.scalars(select(Visit.roistat_visit)).one() == "4336465"
        assert session.scalars(select(Conversation)).one().lead_source["roistat_visit"] == "4336465"
