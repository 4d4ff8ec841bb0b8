"""Routing in the admin: the team and rule forms (saved through hub.routing.store, errors
beside their inputs, nothing saved on error), presence (the header toggle drains the
queue; admin pages keep presence alive), capacities (admins only), the inbox's queue
and breaching-soon views, transfers, and read-only pages for viewers."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Conversation, Message, OperatorState, QueueEntry, RoutingRule, Team, TeamMember, User
from hub.routing import engine, known
from hub.routing.store import save_rule, save_team
from tests.support.admin import field_errors, make_user, post, signed_in
from tests.support.tracking import text_message
from tests.support.whatsapp import make_channel, post_signed

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_rule_cache():
    known.forget()
    yield
    known.forget()


def customer_writes(app, key, text="Hello", name="Ana Souza") -> int:
    wa_id = f"1555{next(_numbers):07d}"
    assert post_signed(app.test_client(), key, text_message(text, wa_id=wa_id, name=name)).status_code == 200
    return wa_id


def conversation_of(runtime, name: str) -> Conversation:
    from hub.models import Contact

    with runtime.db.scope() as s:
        conv = s.scalars(select(Conversation).join(Contact, Contact.id == Conversation.contact_id)
                         .where(Contact.name == name)).one()
        s.expunge(conv)
        return conv


def team_with_rule(runtime, name: str, members: list[int], **fields) -> int:
    with runtime.db.scope() as s:
        team = save_team(s, {"name": name, "member_ids": members, **fields}, now=utcnow())
        save_rule(s, {"team_id": team.id, "conditions": fields.pop("conditions", {}), "position": team.id},
                  now=utcnow())
        team_id = team.id
    known.forget()
    return team_id


def team_form(**overrides) -> dict:
    data = {"name": "Support", "strategy": "least_busy", "time_zone": "Europe/Moscow", "sticky_wait_seconds": "0",
            "hours_mon": "9:00-18:00, 20:00-22:00", "hours_fri": "22:00-02:00", "holidays": "2027-01-01\n2027-01-07",
            "off_hours_reply": "We open at 9.", "first_response_minutes": "5", "next_response_minutes": "1.5",
            "warn_before_minutes": "1", "reassign_on_breach": "on"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def teams(runtime) -> list[Team]:
    with runtime.db.scope() as s:
        found = list(s.scalars(select(Team).order_by(Team.id)))
        s.expunge_all()
        return found


def test_a_team_is_created_and_edited_through_the_form(app, runtime):
    channel_id, _key = make_channel(runtime)
    admin = signed_in(app, runtime, "admin")
    ana = make_user(runtime, "operator", "ana@example.com", name="Ana")
    boris = make_user(runtime, "operator", "boris@example.com", name="Boris")
    make_user(runtime, "viewer", "vera@example.com", name="Vera")
    with runtime.db.scope() as s:
        admin_id = s.scalar(select(User.id).where(User.email == "admin@example.com"))

    page = admin.get("/admin/routing/teams/new").get_data(as_text=True)
    assert 'name="hours_sun"' in page and "Ana" in page and "Boris" in page
    assert 'value="' + str(admin_id) + '"' in page and "Vera" not in page  # viewers cannot be members

    r = post(admin, "/admin/routing/teams/new", {**team_form(), "member_ids": [str(ana), str(boris)],
                                                 "channel_ids": [str(channel_id)], "supervisor_id": str(admin_id)},
             page="/admin/routing/teams/new")
    assert r.status_code == 302, r.get_data(as_text=True)
    [team] = teams(runtime)
    assert team.name == "Support" and team.strategy == "least_busy" and team.time_zone == "Europe/Moscow"
    assert team.hours == {"mon": [["09:00", "18:00"], ["20:00", "22:00"]], "fri": [["22:00", "02:00"]]}
    assert team.holidays == ["2027-01-01", "2027-01-07"] and team.channel_ids == [channel_id]
    assert team.off_hours_reply == "We open at 9."
    assert team.sla == {"first_response_seconds": 300, "next_response_seconds": 90, "warn_before_seconds": 60,
                        "reassign_on_breach": True, "supervisor_id": admin_id}
    with runtime.db.scope() as s:
        assert sorted(s.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team.id))) == [ana, boris]

    edit = admin.get(f"/admin/routing/teams/{team.id}/edit").get_data(as_text=True)
    assert 'value="09:00-18:00, 20:00-22:00"' in edit and 'value="1.5"' in edit and "2027-01-07" in edit
    r = post(admin, f"/admin/routing/teams/{team.id}/edit",
             {**team_form(name="Support RU", hours_fri="", next_response_minutes="", reassign_on_breach=None),
              "member_ids": [str(boris)]}, page="/admin/routing")
    assert r.status_code == 302
    [team] = teams(runtime)
    assert team.name == "Support RU" and team.hours == {"mon": [["09:00", "18:00"], ["20:00", "22:00"]]}
    assert team.sla == {"first_response_seconds": 300, "warn_before_seconds": 60} and team.channel_ids == []
    with runtime.db.scope() as s:
        assert list(s.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team.id))) == [boris]

    listing = admin.get("/admin/routing").get_data(as_text=True)
    assert "Support RU" in listing and "Boris" in listing and "09:00-18:00, 20:00-22:00" in listing
    detail = admin.get(f"/admin/routing/teams/{team.id}").get_data(as_text=True)
    assert "Delete the team Support RU?" in detail  # the delete button asks first
    assert post(admin, f"/admin/routing/teams/{team.id}/delete", page="/admin/routing").status_code == 302
    assert teams(runtime) == []


def test_bad_hours_are_refused_beside_their_weekday_and_nothing_is_saved(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/routing/teams/new", team_form(hours_mon="09:00-25:00", hours_tue="nine to five",
                                                          time_zone="Mars/Olympus"), page="/admin/routing")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert field_errors(html, "hours_tue") == [
        "nine to five: write intervals as 09:00-18:00, separated by commas."]
    assert any("unknown time zone" in e for e in field_errors(html, "time_zone"))  # one round shows all
    assert 'value="nine to five"' in html  # what was typed stays
    assert teams(runtime) == []

    r = post(admin, "/admin/routing/teams/new", team_form(hours_mon="09:00-25:00"), page="/admin/routing")
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "hours_mon") == ["hours.mon[0]: '25:00' is not a time of day"]
    r = post(admin, "/admin/routing/teams/new", team_form(hours_mon="09:00-18:00, 17:00-19:00"), page="/admin/routing")
    assert r.status_code == 422 and "hours: intervals overlap" in r.get_data(as_text=True)
    r = post(admin, "/admin/routing/teams/new", team_form(holidays="2027-13-01"), page="/admin/routing")
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "holidays") == ["holidays[0]: '2027-13-01' is not a date (YYYY-MM-DD)"]
    assert teams(runtime) == []


def test_a_rule_is_saved_through_the_form_and_routing_sees_it_at_once(app, runtime):
    channel_id, _key = make_channel(runtime)
    admin = signed_in(app, runtime, "admin")
    ana = make_user(runtime, "operator", "ana@example.com", name="Ana")
    with runtime.db.scope() as s:
        team_id = save_team(s, {"name": "Support", "member_ids": [ana]}, now=utcnow()).id
        assert known.snapshot(s).rules == ()  # remembered: no rule

    form = {"name": "Prices", "target": f"team:{team_id}", "position": "10", "enabled": "on",
            "channel_ids": [str(channel_id)], "lead_kinds": ["tracked_link", "ad"], "utm_source": "google, yandex",
            "keywords": "price, цена", "contact_name": "ООО", "hours_from": "9:00", "hours_to": "",
            "time_zone": "Europe/Moscow"}
    r = post(admin, "/admin/routing/rules/new", form, page="/admin/routing")
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "hours_from") == ["Give both times, or neither."]
    r = post(admin, "/admin/routing/rules/new", {**form, "hours_to": "18:00", "time_zone": "Nowhere/Else"},
             page="/admin/routing")
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "time_zone") == [
        "conditions.time_zone: unknown time zone 'Nowhere/Else'"]
    with runtime.db.scope() as s:
        assert s.scalar(select(func.count()).select_from(RoutingRule)) == 0

    r = post(admin, "/admin/routing/rules/new", {**form, "hours_to": "18:00"}, page="/admin/routing")
    assert r.status_code == 302, r.get_data(as_text=True)
    with runtime.db.scope() as s:
        rule = s.scalars(select(RoutingRule)).one()
        assert (rule.name, rule.position, rule.enabled, rule.team_id, rule.user_id) == ("Prices", 10, True, team_id, None)
        assert rule.conditions == {"channel_ids": [channel_id], "lead_kinds": ["tracked_link", "ad"],
                                   "utm_source": ["google", "yandex"], "keywords": ["price", "цена"],
                                   "contact": {"name": "ООО"}, "hours": ["09:00", "18:00"],
                                   "time_zone": "Europe/Moscow"}
        assert [r.id for r in known.snapshot(s).rules] == [rule.id]  # forgotten: read again
        rule_id = rule.id
    listing = admin.get("/admin/routing").get_data(as_text=True)
    assert "Prices" in listing and "keywords: price, цена" in listing

    r = post(admin, f"/admin/routing/rules/{rule_id}/edit",
             {"name": "Ana's", "target": f"user:{ana}", "position": "3"}, page="/admin/routing")
    assert r.status_code == 302  # enabled unchecked, every condition emptied
    with runtime.db.scope() as s:
        rule = s.get(RoutingRule, rule_id)
        assert (rule.enabled, rule.team_id, rule.user_id, rule.conditions) == (False, None, ana, {})
        assert known.snapshot(s).rules == ()  # disabled
    assert post(admin, f"/admin/routing/rules/{rule_id}/delete", page="/admin/routing").status_code == 302
    with runtime.db.scope() as s:
        assert s.get(RoutingRule, rule_id) is None


def test_going_online_in_the_header_takes_the_waiting_chat(app, runtime):
    _channel, key = make_channel(runtime)
    operator = signed_in(app, runtime, "operator", "ana@example.com")
    with runtime.db.scope() as s:
        ana = s.scalar(select(User.id).where(User.email == "ana@example.com"))
    team_with_rule(runtime, "Support", [ana])
    customer_writes(app, key, name="Waiting Customer")
    conv = conversation_of(runtime, "Waiting Customer")
    assert conv.assignee_id is None
    with runtime.db.scope() as s:
        assert s.get(QueueEntry, conv.id).reason == "no_operator"

    page = operator.get("/admin/inbox").get_data(as_text=True)
    assert 'id="presence-toggle"' in page and '<option value="offline" selected>' in page
    r = post(operator, "/admin/presence", {"presence": "online", "back": "/admin/inbox"}, page="/admin/inbox")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/inbox")
    assert conversation_of(runtime, "Waiting Customer").assignee_id == ana
    with runtime.db.scope() as s:
        assert s.get(QueueEntry, conv.id) is None and s.get(OperatorState, ana).presence == "online"
    assert '<option value="online" selected>' in operator.get("/admin/inbox").get_data(as_text=True)
    assert post(operator, "/admin/presence", {"presence": "asleep"}, page="/admin/inbox").status_code == 302
    with runtime.db.scope() as s:
        assert s.get(OperatorState, ana).presence == "online"  # refused


def test_admin_pages_keep_presence_alive_at_most_once_a_minute(app, runtime):
    operator = signed_in(app, runtime, "operator", "ana@example.com")
    with runtime.db.scope() as s:
        ana = s.scalar(select(User.id).where(User.email == "ana@example.com"))
        engine.set_presence(s, ana, "online", now=utcnow() - timedelta(minutes=10))

    def seen():
        with runtime.db.scope() as s:
            return s.get(OperatorState, ana).seen_at

    operator.get("/admin/inbox")
    first = seen()
    assert utcnow() - first < timedelta(seconds=30)
    operator.get("/admin/inbox")
    assert seen() == first  # not written again within the minute
    with runtime.db.scope() as s:
        state = s.get(OperatorState, ana)
        state.presence, state.seen_at = "offline", utcnow() - timedelta(minutes=10)
    operator.get("/admin/inbox")
    assert utcnow() - seen() > timedelta(minutes=9)  # offline stays offline, untouched


def test_capacities_are_set_by_admins_only(app, runtime):
    admin = signed_in(app, runtime, "admin")
    operator = signed_in(app, runtime, "operator", "ana@example.com")
    with runtime.db.scope() as s:
        ana = s.scalar(select(User.id).where(User.email == "ana@example.com"))
    page = operator.get("/admin/operators").get_data(as_text=True)
    assert "ana@example.com" in page and 'name="capacity"' not in page
    r = post(operator, f"/admin/operators/{ana}", {"presence": "online", "capacity": "50"}, page="/admin/operators")
    assert r.status_code == 403
    with runtime.db.scope() as s:
        assert s.get(OperatorState, ana) is None

    assert 'name="capacity"' in admin.get("/admin/operators").get_data(as_text=True)
    r = post(admin, f"/admin/operators/{ana}", {"presence": "away", "capacity": "many"}, page="/admin/operators")
    assert r.status_code == 422 and "Capacity: a whole number from 0 to 1000." in r.get_data(as_text=True)
    r = post(admin, f"/admin/operators/{ana}", {"presence": "away", "capacity": "8"}, page="/admin/operators")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        state = s.get(OperatorState, ana)
        assert (state.presence, state.capacity) == ("away", 8)


def test_the_queue_tab_lists_chats_waiting_for_my_teams_with_their_place(app, runtime):
    _channel, key = make_channel(runtime)
    operator = signed_in(app, runtime, "operator", "ana@example.com")
    with runtime.db.scope() as s:
        ana = s.scalar(select(User.id).where(User.email == "ana@example.com"))
    boris = make_user(runtime, "operator", "boris@example.com")
    team_with_rule(runtime, "Support", [ana], conditions={"keywords": ["help"]})
    team_with_rule(runtime, "Billing", [boris])
    customer_writes(app, key, "help me", name="First Waiting")
    customer_writes(app, key, "help again", name="Second Waiting")
    customer_writes(app, key, "my invoice", name="Billing Customer")
    page = operator.get("/admin/inbox?view=queued").get_data(as_text=True)
    assert "First Waiting" in page and "Second Waiting" in page and "Billing Customer" not in page
    assert page.index("First Waiting") < page.index("Second Waiting")
    second = page[page.index("Second Waiting"):]
    assert "#2 in line · no operator free" in second[:second.index("</tr>")]
    assert "Support" in page
    with runtime.db.scope() as s:
        engine.set_presence(s, ana, "online", now=utcnow())  # takes both
    assert "First Waiting" not in operator.get("/admin/inbox?view=queued").get_data(as_text=True)


def test_breaching_soon_lists_response_clocks_about_to_run_out(app, runtime):
    _channel, key = make_channel(runtime)
    operator = signed_in(app, runtime, "operator", "ana@example.com")
    with runtime.db.scope() as s:
        ana = s.scalar(select(User.id).where(User.email == "ana@example.com"))
    team_with_rule(runtime, "Support", [ana], sla={"first_response_seconds": 600, "warn_before_seconds": 120})
    now = utcnow()
    for name, minutes_ago in (("Nearly Late", 9), ("Just Wrote", 1), ("Long Late", 15), ("Answered", 30)):
        customer_writes(app, key, name=name)
        conv = conversation_of(runtime, name)
        with runtime.db.scope() as s:
            for m in s.scalars(select(Message).where(Message.conversation_id == conv.id)):
                m.sent_at = now - timedelta(minutes=minutes_ago)
            if name == "Answered":
                s.add(Message(conversation_id=conv.id, direction="out", type="text", text="Hi!", author_id=ana,
                              status="sent", sent_at=now - timedelta(minutes=29), payload={}))
    page = operator.get("/admin/inbox?view=breaching").get_data(as_text=True)
    assert "Nearly Late" in page and "Long Late" in page
    assert "Just Wrote" not in page and "Answered" not in page
    assert page.index("Long Late") < page.index("Nearly Late")  # the most urgent first
    assert "first response breached" in page and "left" in page


def test_transfer_from_the_conversation_view(app, runtime):
    _channel, key = make_channel(runtime)
    operator = signed_in(app, runtime, "operator", "ana@example.com")
    with runtime.db.scope() as s:
        ana = s.scalar(select(User.id).where(User.email == "ana@example.com"))
    boris = make_user(runtime, "operator", "boris@example.com", name="Boris")
    support = team_with_rule(runtime, "Support", [ana])
    billing = team_with_rule(runtime, "Billing", [boris], conditions={"keywords": ["never matches"]})
    with runtime.db.scope() as s:
        engine.set_presence(s, ana, "online", now=utcnow())
    customer_writes(app, key, name="Moving Customer")
    conv = conversation_of(runtime, "Moving Customer")
    assert (conv.assignee_id, conv.team_id) == (ana, support)
    view = operator.get(f"/admin/inbox/{conv.id}").get_data(as_text=True)
    assert 'id="transfer"' in view and f'value="team:{billing}"' in view and f'value="user:{boris}"' in view
    assert "Support</a>" in view[view.index('id="conversation-team"'):]

    r = post(operator, f"/admin/inbox/{conv.id}/transfer", {"to": f"team:{billing}"}, page="/admin/inbox")
    assert r.status_code == 302
    conv = conversation_of(runtime, "Moving Customer")
    assert (conv.assignee_id, conv.team_id) == (None, billing)  # Boris is offline: it waits in Billing
    view = operator.get(f"/admin/inbox/{conv.id}").get_data(as_text=True)
    assert "Transferred to Billing: it waits (no operator free)." in view and "#1 in line" in view

    with runtime.db.scope() as s:
        engine.set_presence(s, boris, "away", now=utcnow())
    r = post(operator, f"/admin/inbox/{conv.id}/transfer", {"to": f"user:{ana}"}, page="/admin/inbox")
    assert r.status_code == 302
    assert conversation_of(runtime, "Moving Customer").assignee_id == ana
    with runtime.db.scope() as s:
        from hub.models import Event

        moved = [e.data for e in s.scalars(select(Event).where(Event.type == "conversation.transferred"))]
    assert [m["by"]["email"] for m in moved] == ["ana@example.com", "ana@example.com"]
    r = post(operator, f"/admin/inbox/{conv.id}/transfer", {"to": "nobody"}, page="/admin/inbox")
    assert r.status_code == 302 and conversation_of(runtime, "Moving Customer").assignee_id == ana


def test_viewers_read_routing_but_cannot_change_it(app, runtime):
    _channel, key = make_channel(runtime)
    viewer = signed_in(app, runtime, "viewer")
    ana = make_user(runtime, "operator", "ana@example.com", name="Ana")
    team_id = team_with_rule(runtime, "Support", [ana])
    customer_writes(app, key, name="Some Customer")
    conv = conversation_of(runtime, "Some Customer")
    with runtime.db.scope() as s:
        rule_id = s.scalar(select(RoutingRule.id))

    routing = viewer.get("/admin/routing").get_data(as_text=True)
    assert "Support" in routing and "Add a team" not in routing and "Delete" not in routing
    team = viewer.get(f"/admin/routing/teams/{team_id}").get_data(as_text=True)
    assert "Some Customer" not in team and f"#{conv.id}" in team and "no operator free" in team
    assert "Edit" not in team
    assert "Ana" in viewer.get("/admin/operators").get_data(as_text=True)
    view = viewer.get(f"/admin/inbox/{conv.id}").get_data(as_text=True)
    assert 'id="transfer"' not in view and 'id="presence-toggle"' not in view
    for url in ("/admin/routing/teams/new", f"/admin/routing/teams/{team_id}/edit", "/admin/routing/rules/new"):
        assert viewer.get(url).status_code == 403
    for url, data in (("/admin/routing/teams/new", team_form()), (f"/admin/routing/teams/{team_id}/delete", {}),
                      (f"/admin/routing/rules/{rule_id}/delete", {}), ("/admin/presence", {"presence": "online"}),
                      (f"/admin/operators/{ana}", {"presence": "online", "capacity": "3"}),
                      (f"/admin/inbox/{conv.id}/transfer", {"to": f"user:{ana}"})):
        assert post(viewer, url, data, page="/admin/routing").status_code == 403, url
    assert [t.name for t in teams(runtime)] == ["Support"]
    with runtime.db.scope() as s:
        assert s.get(RoutingRule, rule_id) is not None and s.get(OperatorState, ana) is None
