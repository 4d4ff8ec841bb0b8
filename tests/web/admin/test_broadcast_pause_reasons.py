"""A paused broadcast's reason on the progress page in the admin's language, for every
cause the pump and a person pause for; the API and the event keep the English sentence."""
from __future__ import annotations

import pytest
from markupsafe import escape
from sqlalchemy import select, update

from hub.broadcasts import lifecycle, pauses
from hub.broadcasts.pump import pause_cause
from hub.channels.whatsapp.templates import parameters as tpl
from hub.models import Broadcast, BroadcastRecipient, Channel, Event
from hub.platform.db import utcnow
from tests.support.admin import post, signed_in
from tests.web.admin import test_broadcasts as wizard

RUSSIAN = {
    "quality": "Приостановлена: рейтинг качества номера — RED",
    "template_missing": "Приостановлена: шаблона promo (en) больше нет",
    "template_status": "Приостановлена: шаблон promo (en) в статусе PAUSED",
    "failures": "Приостановлена: не доставлено 2 из последних 2 сообщений — больше порога 20%",
    "by_hand": "Приостановлена: приостановлена вручную",
}
ENGLISH = {
    "quality": ("quality", "the number's quality rating is RED"),
    "template_missing": ("template", "template promo (en) no longer exists"),
    "template_status": ("template", "template promo (en) is PAUSED"),
    "failures": ("failures", "2 of the last 2 messages failed, over the threshold of 20%"),
    "by_hand": ("user", "paused by hand"),
}


@pytest.fixture
def launched(app, runtime):
    """A broadcast launched from the wizard (3 recipients) and its operator's client."""
    chosen = wizard.promo_channel(runtime)
    operator = signed_in(app, runtime, "operator")
    wizard.upload(operator, chosen)
    post(operator, "/admin/broadcasts/new",
         {"step": "create", "launch": "1",
          **wizard.compose(chosen, wizard.audience_id(runtime), var_1="value", value_1="x")},
         page="/admin/broadcasts/new")
    with runtime.db.scope() as s:
        b = s.scalar(select(Broadcast))
        assert b.status == "scheduled"
        return operator, b.id


def cause_of(s, b, code):
    """The pump's own cause for `code`, from the rows as they would be (then put back)."""
    channel = s.get(Channel, b.channel_id)
    template = tpl.find(s, channel.waba_id, b.template_name, b.template_language)
    if code == "by_hand":
        return pauses.by_hand()
    if code == "quality":
        channel.quality_rating = "RED"
        cause = pause_cause(s, b, channel, template)
        channel.quality_rating = "GREEN"
    elif code == "template_missing":
        cause = pause_cause(s, b, channel, None)
    elif code == "template_status":
        template.status = "PAUSED"
        cause = pause_cause(s, b, channel, template)
        template.status = "APPROVED"
    else:
        b.failure_window = 2
        ids = list(s.scalars(select(BroadcastRecipient.id).where(BroadcastRecipient.broadcast_id == b.id)
                            .order_by(BroadcastRecipient.id).limit(2)))
        s.execute(update(BroadcastRecipient).where(BroadcastRecipient.id.in_(ids)).values(status="failed")
                  .execution_options(synchronize_session=False))
        cause = pause_cause(s, b, channel, template)
        s.execute(update(BroadcastRecipient).where(BroadcastRecipient.id.in_(ids)).values(status="pending")
                  .execution_options(synchronize_session=False))
    assert cause is not None and cause.detail["code"] == code
    return cause


@pytest.mark.parametrize("code", list(RUSSIAN))
def test_the_progress_page_says_each_pause_reason_in_russian_and_the_api_in_english(runtime, launched, client,
                                                                                     admin_headers, code):
    operator, broadcast_id = launched
    with runtime.db.scope() as s:
        b = s.get(Broadcast, broadcast_id)
        lifecycle.pause_locked(s, b, cause_of(s, b, code), now=utcnow())
    url = f"/admin/broadcasts/{broadcast_id}"
    english = operator.get(f"{url}/progress").get_data(as_text=True)
    assert str(escape(f"Paused: {ENGLISH[code][1]}")) in english
    operator.get("/admin/language/ru?next=/admin/")
    for page in (operator.get(f"{url}/progress").get_data(as_text=True), operator.get(url).get_data(as_text=True)):
        assert RUSSIAN[code] in page, page
        assert str(escape(ENGLISH[code][1])) not in page
    got = client.get(f"/api/v1/broadcasts/{broadcast_id}", headers=admin_headers).json
    assert (got["paused_by"], got["paused_reason"]) == ENGLISH[code]
    assert "paused_cause" not in got
    with runtime.db.scope() as s:
        event = s.scalars(select(Event).where(Event.type == "broadcast.paused")).one()
        broadcast = event.data["broadcast"]
        assert (broadcast["paused_by"], broadcast["paused_reason"]) == ENGLISH[code]
        lifecycle.resume(s, broadcast_id, now=utcnow())
        assert s.get(Broadcast, broadcast_id).paused_cause is None


def test_the_pause_by_hand_keeps_its_cause_and_an_unknown_cause_shows_the_stored_reason(runtime, launched):
    operator, broadcast_id = launched
    url = f"/admin/broadcasts/{broadcast_id}"
    assert post(operator, f"{url}/pause", page=url).status_code == 302
    with runtime.db.scope() as s:
        b = s.get(Broadcast, broadcast_id)
        assert (b.paused_by, b.paused_reason, b.paused_cause) == ("user", "paused by hand", {"code": "by_hand"})
        b.paused_cause, b.paused_reason = {"code": "from_a_later_version"}, "a reason this version cannot word"
    operator.get("/admin/language/ru?next=/admin/")
    assert "Приостановлена: a reason this version cannot word" in operator.get(f"{url}/progress").get_data(
        as_text=True)
