from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.channels.whatsapp.outbound import window
from hub.models.conversations import Conversation

T0 = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)
DAY = timedelta(hours=24)


@dataclass
class Conv:
    last_inbound_at: datetime | None = None
    ctwa_entry_at: datetime | None = None
    fep_expires_at: datetime | None = None


# --- customer service window ---------------------------------------------------------------

def test_no_user_message_means_no_window():
    conv = Conv()
    assert window.closes_at(conv) is None
    assert not window.is_open(conv, T0)
    assert not window.closing_soon(conv, T0, timedelta(hours=1))


@pytest.mark.parametrize(
    "offset, expected",
    [
        (timedelta(0), True),
        (DAY - SECOND, True),
        (DAY, False),  # exactly 24 h later the window has closed
        (DAY + SECOND, False),
        (-SECOND, True),  # a clock slightly behind the webhook timestamp: still open
    ],
)
def test_window_is_open_for_24_hours(offset, expected):
    conv = Conv(last_inbound_at=T0)
    assert window.is_open(conv, T0 + offset) is expected
    assert window.closes_at(conv) == T0 + DAY


def test_a_new_user_message_resets_the_window():
    conv = Conv(last_inbound_at=T0)
    assert not window.is_open(conv, T0 + DAY + SECOND)
    conv.last_inbound_at = T0 + timedelta(hours=20)
    assert window.is_open(conv, T0 + DAY + SECOND)
    assert window.closes_at(conv) == T0 + timedelta(hours=44)


def test_other_time_zones_are_the_same_instant():
    plus3 = timezone(timedelta(hours=3))
    conv = Conv(last_inbound_at=T0.astimezone(plus3))
    assert window.is_open(conv, T0 + DAY - SECOND)
    assert not window.is_open(conv, (T0 + DAY).astimezone(plus3))


def test_closing_soon_boundaries():
    conv = Conv(last_inbound_at=T0)
    hour = timedelta(hours=1)
    assert not window.closing_soon(conv, T0 + DAY - hour - SECOND, hour)
    assert window.closing_soon(conv, T0 + DAY - hour, hour)
    assert window.closing_soon(conv, T0 + DAY - SECOND, hour)
    assert not window.closing_soon(conv, T0 + DAY, hour)  # already closed, not "soon"
    with pytest.raises(ValueError, match="within"):
        window.closing_soon(conv, T0, -hour)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        window.is_open(Conv(last_inbound_at=T0), datetime(2025, 9, 1, 13, 0))
    with pytest.raises(ValueError, match="last_inbound_at"):
        window.closes_at(Conv(last_inbound_at=datetime(2025, 9, 1, 13, 0)))


def test_works_with_the_hub_conversation_model():
    conv = Conversation(last_inbound_at=T0)
    assert window.is_open(conv, T0 + timedelta(hours=23))
    assert not window.is_open(conv, T0 + DAY)


@given(
    last=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                      timezones=st.just(timezone.utc)),
    seconds=st.integers(min_value=-10 * 86400, max_value=10 * 86400),
)
def test_window_open_iff_less_than_24_hours_since_the_user_wrote(last, seconds):
    now = last + timedelta(seconds=seconds)
    assert window.is_open(Conv(last_inbound_at=last), now) is (seconds < 86400)


# --- free entry point ----------------------------------------------------------------------

def test_no_ctwa_entry_no_fep():
    conv = Conv(last_inbound_at=T0)
    assert window.fep_start_on_reply(conv, T0 + timedelta(minutes=5)) is None
    assert not window.fep_open(conv, T0)
    assert not window.entry_point_free(conv, T0 + timedelta(minutes=5))


@pytest.mark.parametrize(
    "reply_after, starts",
    [
        (timedelta(0), True),
        (timedelta(minutes=3), True),
        (DAY - SECOND, True),
        (DAY, False),  # the 24 h to answer are over
        (DAY + SECOND, False),
        (-SECOND, False),  # a reply before the ad message cannot answer it
    ],
)
def test_reply_within_24_hours_of_the_ad_starts_a_72_hour_fep(reply_after, starts):
    conv = Conv(last_inbound_at=T0, ctwa_entry_at=T0)
    reply_at = T0 + reply_after
    expected = reply_at + timedelta(hours=72) if starts else None
    assert window.fep_start_on_reply(conv, reply_at) == expected
    assert window.entry_point_free(conv, reply_at) is starts


def test_fep_runs_72_hours_from_the_reply_not_from_the_ad():
    conv = Conv(last_inbound_at=T0, ctwa_entry_at=T0)
    reply_at = T0 + timedelta(hours=10)
    conv.fep_expires_at = window.fep_start_on_reply(conv, reply_at)
    assert conv.fep_expires_at == T0 + timedelta(hours=82)
    assert window.fep_open(conv, reply_at)
    assert window.fep_open(conv, T0 + timedelta(hours=82) - SECOND)
    assert not window.fep_open(conv, T0 + timedelta(hours=82))
    # The FEP does not extend the customer service window.
    assert not window.is_open(conv, T0 + timedelta(hours=30))
    assert window.fep_open(conv, T0 + timedelta(hours=30))
    assert window.entry_point_free(conv, T0 + timedelta(hours=30))


def test_only_the_first_reply_starts_the_fep():
    conv = Conv(last_inbound_at=T0, ctwa_entry_at=T0)
    conv.fep_expires_at = window.fep_start_on_reply(conv, T0 + timedelta(hours=1))
    assert window.fep_start_on_reply(conv, T0 + timedelta(hours=2)) is None
    assert conv.fep_expires_at == T0 + timedelta(hours=73)


def test_a_new_ad_entry_after_the_fep_ended_can_start_another():
    first_expiry = T0 + timedelta(hours=73)
    later = T0 + timedelta(days=10)
    conv = Conv(last_inbound_at=later, ctwa_entry_at=later, fep_expires_at=first_expiry)
    assert not window.fep_open(conv, later)
    assert window.fep_start_on_reply(conv, later + timedelta(hours=1)) == later + timedelta(hours=73)


def test_an_ad_entry_while_an_fep_runs_does_not_restart_it():
    running_until = T0 + timedelta(hours=73)
    conv = Conv(last_inbound_at=T0 + timedelta(hours=5), ctwa_entry_at=T0 + timedelta(hours=5),
                fep_expires_at=running_until)
    assert window.fep_start_on_reply(conv, T0 + timedelta(hours=6)) is None
    assert window.entry_point_free(conv, T0 + timedelta(hours=6))  # still inside the running one


def test_no_reply_within_24_hours_means_no_fep_later():
    conv = Conv(last_inbound_at=T0, ctwa_entry_at=T0)
    assert window.fep_start_on_reply(conv, T0 + timedelta(hours=30)) is None
    assert not window.entry_point_free(conv, T0 + timedelta(hours=30))


@given(
    reply_seconds=st.integers(min_value=-86400, max_value=3 * 86400),
    probe_seconds=st.integers(min_value=0, max_value=6 * 86400),
)
def test_fep_is_only_ever_72_hours_from_a_timely_reply(reply_seconds, probe_seconds):
    conv = Conv(last_inbound_at=T0, ctwa_entry_at=T0)
    reply_at = T0 + timedelta(seconds=reply_seconds)
    conv.fep_expires_at = window.fep_start_on_reply(conv, reply_at)
    timely = 0 <= reply_seconds < 86400
    assert (conv.fep_expires_at is not None) is timely
    probe = reply_at + timedelta(seconds=probe_seconds)
    assert window.fep_open(conv, probe) is (timely and probe_seconds < 72 * 3600)
