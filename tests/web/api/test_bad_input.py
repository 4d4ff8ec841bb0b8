"""Every operation of /api/v1, walked from its own OpenAPI document with input no column can
hold (ids past 32/64 bits, NUL, lone surrogates, 2 MB strings, wrong types): never a 5xx,
and input that can never be valid gets a 4xx that names the field and writes nothing."""
from __future__ import annotations

import copy
import json
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from flask import got_request_exception
from sqlalchemy import event, select

from hub.broadcasts.audiences import create_from_csv
from hub.broadcasts.lifecycle import create as create_broadcast
from hub.platform.db import utcnow
from hub.models import (Audience, Broadcast, Channel, ConnectorRecord, Conversation, Delivery, Message, ReportSchedule, RoutingRule, Team,
                        Template, TrackedLink, User)
from hub.automations import store as automation_store
from hub.automations.runtime import start_manually
from hub.models import Run, Scenario
from hub.routing.store import save_rule, save_team
from hub.conversations.store import upsert_contact
from hub.models import Contact
from hub.models.contacts import ContactMerge
from hub.conversations.persons import OPERATOR, link
from hub.web.api.fields import id_max
from tests.support.factories import emit_many, webhook_connector
from tests.support.tracking import make_link
from tests.support.whatsapp import WABA_ID, fixture, make_channel, post_signed

SCENARIO = {"name": "Hello", "trigger": {"type": "keyword", "keywords": ["hello"]},
            "steps": [{"id": "hi", "type": "text", "text": "Hello {{contact.name}}"}]}
HUGE = 2 * 1024 * 1024
NEVER_VALID_TEXT = ["\x00", "a\x00b", "\ud800", "x\udfffy", "x" * HUGE]
NEVER_VALID_INTS = [2**63, 2**70, -(2**70)]
ODD = [2**31, 2**31 - 1, -1, 0, 1.5, 1e308, True, "string", "", [], {}, None]
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
PATH_VALUES = [str(2**31), str(2**63), str(2**70), "%00"]

# One valid body per operation (several where one schema has several shapes); mutations of
# a property start from the first body that uses it, so they reach the view, not just the
# schema. {name} is filled from the seeded rows.
BODIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("post", "/channels"): [{"name": "Support", "phone_number_id": "2200000000000009", "waba_id": WABA_ID,
                             "access_token": "EAAG-other", "app_secret": "another-app-secret-0123"}],
    ("patch", "/channels/{channel_id}"): [{"name": "Sales desk", "display_number": "+1 555 000 1111"}],
    ("post", "/channels/telegram"): [{"name": "Shop bot", "bot_token": "123456:" + "A" * 35,
                                      "api_base_url": "http://127.0.0.1:9"}],  # nothing listens: refused, named
    ("patch", "/channels/telegram/{channel_id}"): [{"name": "Shop bot", "bot_token": "123456:" + "B" * 35}],
    ("post", "/channels/instagram"): [{"name": "Shop on Instagram", "ig_user_id": "17841400000000001",
                                       "access_token": "IGAA" + "C" * 40, "app_secret": "instagram-app-secret-01",
                                       "verify_token": "verify-phrase-01",
                                       "api_base_url": "http://127.0.0.1:9"}],  # nothing listens: refused, named
    ("patch", "/channels/instagram/{channel_id}"): [{"name": "Shop on Instagram", "access_token": "IGAA" + "D" * 40}],
    ("post", "/conversations/{conversation_id}/assign"): [{"assignee_id": "{user_id}"}],
    ("post", "/conversations/{conversation_id}/close"): [{"reason": "done"}],
    ("patch", "/contacts/{contact_id}"): [{"name": "Ana Souza", "phone": "+4915100000009"}],
    ("post", "/contacts/{contact_id}/merge"): [{"person_contact_id": "{other_contact_id}"}],
    ("post", "/contacts/{contact_id}/tags"): [{"add": ["vip", "Постоянный клиент"], "remove": ["new"]}],
    ("patch", "/contacts/{contact_id}/fields"): [{"fields": {"city": "Berlin", "first_name": None}}],
    ("post", "/messages"): [
        {"conversation_id": "{conversation_id}", "type": "text", "text": {"body": "On its way", "preview_url": False},
         "reply_to": "wamid.X"},
        {"channel_id": "{channel_id}", "to": "+15557654321", "type": "image",
         "image": {"link": "https://example.com/a.png", "caption": "a", "filename": "a.png"}},
        {"conversation_id": "{conversation_id}", "type": "template",
         "template": {"name": "order_update", "language": "en", "body": ["Ana", "42"], "header": "x",
                      "buttons": [{"index": 0, "sub_type": "url", "text": "42"}]}},
        {"conversation_id": "{conversation_id}", "type": "interactive",
         "interactive": {"type": "list", "header": "h", "body": "b", "footer": "f", "button": "Menu",
                         "buttons": [{"id": "a", "title": "A"}],
                         "sections": [{"title": "s", "rows": [{"id": "r", "title": "R", "description": "d"}]}]}},
        {"conversation_id": "{conversation_id}", "type": "reaction",
         "reaction": {"message_id": "{wamid}", "emoji": "\N{THUMBS UP SIGN}"}},
        {"conversation_id": "{conversation_id}", "type": "read", "read": {"message_id": "{wamid}"}},
    ],
    ("post", "/templates/{template_id}/preview"): [{"body": ["Ana", "42"], "header": "x",
                                                     "buttons": [{"index": 0, "sub_type": "url", "text": "42"}]}],
    ("post", "/templates/sync"): [{"channel_id": "{channel_id}"}],
    ("post", "/connectors"): [{"kind": "webhook", "name": "other", "enabled": False,
                               "event_types": ["message.received"],
                               "settings": {"url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "a" * 32}}],
    ("patch", "/connectors/{connector_id}"): [{"name": "receiver", "enabled": True, "event_types": None,
                                               "settings": {"url": "http://127.0.0.1:9/hook"}}],
    ("post", "/deliveries/replay"): [{"ids": ["{delivery_id}"], "connector_id": "{connector_id}", "all": False}],
    ("post", "/tracked-links"): [{"slug": "autumn", "channel_id": "{channel_id}", "campaign": "Autumn",
                                  "text_template": "Hi {code}", "utm_source": "s", "utm_medium": "m",
                                  "utm_campaign": "c", "utm_content": "c", "utm_term": "t", "static_code": "QR24",
                                  "active": True}],
    ("patch", "/tracked-links/{link_id}"): [{"campaign": "Spring", "text_template": "Hello {code}",
                                             "static_code": None}],
    ("post", "/teams"): [{"name": "Night shift", "strategy": "least_busy", "time_zone": "Europe/Moscow",
                          "hours": {"mon": [["22:00", "06:00"]]}, "holidays": ["2027-01-01"],
                          "channel_ids": ["{channel_id}"], "member_ids": ["{user_id}"], "sticky_wait_seconds": 30,
                          "off_hours_reply": "We open at 22:00"}],
    ("patch", "/teams/{team_id}"): [{"name": "Sales team", "hours": {"tue": [["09:00", "18:00"]]},
                                     "holidays": [], "member_ids": ["{user_id}"], "off_hours_reply": None}],
    ("post", "/routing-rules"): [{"name": "price", "position": 2, "enabled": True,
                                  "conditions": {"keywords": ["price"], "hours": ["09:00", "18:00"]},
                                  "team_id": "{team_id}"},
                                 {"name": "vip", "user_id": "{user_id}", "conditions": {"contact": {"name": "VIP"}}}],
    ("patch", "/routing-rules/{rule_id}"): [{"name": "all", "position": 1, "conditions": {}, "enabled": False}],
    ("put", "/operators/{user_id}/presence"): [{"presence": "online", "capacity": 3}],
    ("post", "/conversations/{conversation_id}/transfer"): [{"team_id": "{team_id}"}, {"user_id": "{user_id}"}],
    ("post", "/report-schedules"): [{"name": "Weekly", "enabled": True, "frequency": "weekly", "at_time": "09:00",
                                     "weekday": 0, "day_of_month": 1, "time_zone": "Europe/Moscow",
                                     "channel_id": "{channel_id}", "team_id": "{team_id}", "missed_minutes": 15,
                                     "recipients": ["head@example.com"], "webhook": True,
                                     "sections": ["templates", "broadcasts"]}],
    ("patch", "/report-schedules/{schedule_id}"): [{"name": "Daily", "frequency": "daily", "at_time": "08:00",
                                                    "recipients": [], "webhook": True, "team_id": None,
                                                    "sections": ["broadcasts"]}],
    ("post", "/audiences"): [{"name": "Recent", "segment": {"last_message_within_days": 7}}],
    ("post", "/audiences/count"): [{"segment": {"tags_any": ["vip"], "last_message_within_days": 7}}],
    ("post", "/audiences/csv"): [{}],  # a text/csv or multipart body, no JSON to mutate: its query is walked
    ("post", "/broadcasts/verdict"): [{"channel_id": "{channel_id}", "audience_id": "{audience_id}",
                                       "template_name": "order_update", "template_language": "en",
                                       "variables": [{"column": "first_name"}, {"value": "42"}], "header": "x",
                                       "buttons": [{"index": 0, "sub_type": "url", "text": "42"}]}],
    ("post", "/broadcasts"): [{"name": "December", "channel_id": "{channel_id}", "audience_id": "{audience_id}",
                               "template_name": "order_update", "template_language": "en",
                               "variables": [{"column": "first_name"}, {"value": "42"}], "header": "x",
                               "buttons": [{"index": 0, "sub_type": "url", "text": "42"}], "start_at": None,
                               "timezone": "Europe/Moscow", "allowed_days": [1, 2, 3, 4, 5], "window_start": "09:00",
                               "window_end": "21:00", "failure_threshold": 0.2, "failure_window": 50,
                               "start": False}],
    ("post", "/automations/scenarios"): [{"document": "{scenario_document}", "publish": True}],
    ("post", "/automations/scenarios/import"): [{"file": {"format": "hub.automation/1",
                                                          "scenario": "{scenario_document}"}, "publish": False}],
    ("put", "/automations/scenarios/{scenario_id}"): [{"document": "{scenario_document}"}],
    ("post", "/automations/scenarios/{scenario_id}/rollback"): [{"version": 1}],
    ("post", "/automations/scenarios/{scenario_id}/start"): [{"conversation_id": "{conversation_id}"}],
}
# Operations whose valid call leaves the hub (Graph API, connector URLs) or removes the seed:
# only their bad-input cases run.
NOT_CALLED_VALID = {("post", "/templates/sync"), ("post", "/connectors/{connector_id}/check"),
                    ("delete", "/connectors/{connector_id}"), ("delete", "/tracked-links/{link_id}"),
                    ("get", "/messages/{message_id}/media"), ("delete", "/teams/{team_id}"),
                    ("delete", "/routing-rules/{rule_id}"), ("delete", "/report-schedules/{schedule_id}"),
                    ("post", "/report-schedules/{schedule_id}/send"),
                    ("post", "/broadcasts/{broadcast_id}/cancel"),
                    ("delete", "/automations/scenarios/{scenario_id}")}


@pytest.fixture
def seeded(client, runtime, admin_headers) -> dict[str, Any]:
    channel_id, key = make_channel(runtime)
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    connector_id = webhook_connector(runtime, "http://127.0.0.1:9/hook")
    emit_many(runtime, 1)
    link_id = make_link(runtime, channel_id)
    with runtime.db.scope() as session:
        template = Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                            category="UTILITY", parameter_format="POSITIONAL", components=[
                                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                                {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."},
                                {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track",
                                                                 "url": "https://x.io/t/{{1}}"}]}])
        session.add(template)
        session.flush()
        message = session.scalars(select(Message)).one()
        user_id = session.scalars(select(User.id)).one()
        team = save_team(session, {"name": "Sales", "member_ids": [user_id]}, now=utcnow())
        rule = save_rule(session, {"team_id": team.id, "conditions": {"keywords": ["order"]}}, now=utcnow())
        schedule = ReportSchedule(name="Monday", frequency="weekly", at_time="09:00", time_zone="UTC", filters={},
                                  recipients=[], webhook=True, created_at=utcnow())
        session.add(schedule)
        session.flush()
        audience = create_from_csv(session, name="list", data=b"phone,first_name\n+4915112345678,Ana\n", now=utcnow())
        broadcast = create_broadcast(session, name="December", channel_id=channel_id, audience_id=audience.id,
                                     template_name="order_update", template_language="en", header="x",
                                     variables=[{"column": "first_name"}, {"value": "42"}],
                                     buttons=[{"index": 0, "sub_type": "url", "text": "42"}], now=utcnow())
        scenario = automation_store.create(session, SCENARIO, now=utcnow())
        automation_store.publish(session, scenario, now=utcnow())
        automation_store.publish(session, scenario, now=utcnow())
        run = start_manually(session, scenario, session.scalars(select(Conversation)).one(), now=utcnow(), by="test")
        contact = session.get(Contact, session.scalars(select(Conversation.contact_id)).one())
        merged = upsert_contact(session, wa_id="4915100000077", user_id=None, name="Merged", now=utcnow())
        other = upsert_contact(session, wa_id="4915100000078", user_id=None, name="Other", now=utcnow())
        merge = link(session, merged, contact, reason=OPERATOR, now=utcnow())
        return {"contact_id": contact.id, "other_contact_id": other.id, "merge_id": merge.id,
                "scenario_id": scenario.id, "run_id": run.id, "scenario_document": SCENARIO,
                "audience_id": audience.id, "broadcast_id": broadcast.id, "team_id": team.id, "rule_id": rule.id, "schedule_id": schedule.id, "channel_id": channel_id, "connector_id": connector_id, "link_id": link_id,
                "template_id": template.id, "message_id": message.id, "wamid": message.wa_message_id,
                "conversation_id": session.scalars(select(Conversation.id)).one(),
                "delivery_id": session.scalars(select(Delivery.id).order_by(Delivery.id)).first(),  # the merge adds one
                "user_id": session.scalars(select(User.id)).one()}


@pytest.fixture
def committed_writes(runtime) -> Iterator[list[str]]:
    """Statements that changed data and were committed (the token's last-use stamp aside)."""
    committed: list[str] = []
    engine = runtime.db.engine

    def on_execute(conn, _cursor, statement, *_):
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and "api_tokens" not in statement.split("SET")[0]:
            conn.info.setdefault("writes", []).append(statement)

    def on_commit(conn):
        committed.extend(conn.info.pop("writes", []))

    def on_rollback(conn):
        conn.info.pop("writes", None)

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    yield committed
    event.remove(engine, "before_cursor_execute", on_execute)
    event.remove(engine, "commit", on_commit)
    event.remove(engine, "rollback", on_rollback)


def _fill(value: Any, seed: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in seed:
        return seed[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, seed) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, seed) for v in value]
    return value


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _property_paths(spec: dict[str, Any], schema: dict[str, Any], prefix: tuple = ()) -> Iterator[tuple]:
    """The path of every property, nested objects and array items included."""
    schema = _resolve(spec, schema)
    for name, prop in schema.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        path = prefix + (name,)
        prop = _resolve(spec, prop)
        yield path
        if prop.get("type") == "array" and "items" in prop:
            item = _resolve(spec, prop["items"])
            yield path + (0,)
            if "properties" in item:
                yield from _property_paths(spec, item, path + (0,))
        elif "properties" in prop:
            yield from _property_paths(spec, prop, path)


def _with(body: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node: Any = out
    for step, nxt in zip(path, path[1:]):
        if isinstance(step, int):
            if not node:
                node.append({} if isinstance(nxt, str) else [])
            node = node[0]
        else:
            if not isinstance(node.get(step), (dict, list)):
                node[step] = [] if isinstance(nxt, int) else {}
            node = node[step]
    last = path[-1]
    if isinstance(last, int):
        node[:1] = [value]
    else:
        node[last] = value
    return out


def _query_string(params: dict[str, Any]) -> str:
    """Percent-encoded by hand: lone surrogates go out as their (invalid) UTF-8 bytes."""
    return "&".join(f"{k}={quote(str(v).encode('utf-8', 'surrogatepass'), safe='')}"
                    for k, v in params.items())


def _cases(spec: dict[str, Any], seed: dict[str, Any]) -> Iterator[tuple]:
    """(method, url, query, body-or-raw, content type, never valid?, field named) per request."""
    for template, item in spec["paths"].items():
        short = template.removeprefix("/api/v1")
        path_params = [p["name"] for p in item.get("parameters", []) if p["in"] == "path"]
        base_url = template.format(**{p: seed[p] for p in path_params})
        for method, op in item.items():
            if method == "parameters":
                continue
            called = (method, short) not in NOT_CALLED_VALID
            for name in path_params:
                for value in PATH_VALUES:
                    url = template.format(**{p: (value if p == name else seed[p]) for p in path_params})
                    yield method, url, {}, None, None, True, None
            if not called:
                continue
            for param in op.get("parameters", []):
                if param["in"] != "query":
                    continue
                integer = _resolve(spec, param.get("schema", {})).get("type") == "integer"
                for value in ["\x00", "a\x00b"]:
                    yield method, base_url, {param["name"]: value}, None, None, True, param["name"]
                for value in [*NEVER_VALID_INTS, 2**31, -1, "\ud800", "%ED%A0%80", "x" * 10_000, "1.5", "",
                              *EDGE_TIMES]:
                    never = integer and value in NEVER_VALID_INTS
                    yield method, base_url, {param["name"]: value}, None, None, never, param["name"]
            body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body_schema is None:
                continue
            bodies = [_fill(b, seed) for b in BODIES[(method, short)]]
            for raw in (b"[]", b"1", b'"x"', b"null", b"{", b"\xff\xfe", b'{"a": NaN}'):
                yield method, base_url, {}, raw, "application/json", True, None
            yield method, base_url, {}, b"name=x", "application/x-www-form-urlencoded", True, None
            for path in _property_paths(spec, body_schema):
                body = next((b for b in bodies if path[0] in b), bodies[0])
                named = next((s for s in reversed(path) if isinstance(s, str)))
                for value in NEVER_VALID_TEXT + NEVER_VALID_INTS:
                    yield method, base_url, {}, _with(body, path, value), None, True, named
                for value in ODD:
                    yield method, base_url, {}, _with(body, path, value), None, False, named


def _send(client, headers, method, url, query, body, content_type):
    kwargs: dict[str, Any] = {"headers": headers}
    if query:
        kwargs["query_string"] = _query_string(query)
    if isinstance(body, bytes):
        kwargs.update(data=body, content_type=content_type)
    elif body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(url, **kwargs)


def test_bodies_cover_every_operation_with_a_body(client):
    spec = client.get("/api/v1/openapi.json").json
    with_body = {(m, p.removeprefix("/api/v1")) for p, item in spec["paths"].items() for m, op in item.items()
                 if m != "parameters" and "requestBody" in op}
    assert with_body == set(BODIES), "give each new operation with a body a valid example in BODIES"


def test_every_operation_answers_bad_input_with_a_4xx(app, client, admin_headers, seeded, committed_writes):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash is a 500 to record, not the end of the walk
    crashes: list[str] = []

    def record(_app, exception, **_):
        crashes.append(repr(exception)[:200])

    spec = client.get("/api/v1/openapi.json").json
    problems: list[str] = []
    count = 0
    for method, url, query, body, content_type, never_valid, named in _cases(spec, seeded):
        count += 1
        before = len(committed_writes)
        with got_request_exception.connected_to(record, app):
            r = _send(client, admin_headers, method, url, query, body, content_type)
        shown = repr(body)[:120] if body is not None else repr(query)[:120]
        where = f"{method.upper()} {url} {shown}"
        if r.status_code >= 500:
            problems.append(f"{where} -> {r.status_code} {crashes[-1] if crashes else ''}")
        elif never_valid:
            if not 400 <= r.status_code < 500:
                problems.append(f"{where} -> {r.status_code}, expected a 4xx")
            elif named and r.status_code == 422 and named not in r.get_data(as_text=True):
                problems.append(f"{where} -> 422 without naming {named}: {r.get_data(as_text=True)[:300]}")
            if len(committed_writes) != before:
                problems.append(f"{where} -> {r.status_code} but wrote {committed_writes[before:]}")
    assert count > 1000, "the walk found the operations"
    assert not problems, f"{len(problems)} of {count} requests:\n" + "\n".join(problems[:80])


def test_the_reviews_cases_are_refused_naming_the_field(client, admin_headers, seeded):
    def call(method, url, **kwargs):
        return getattr(client, method)(url, headers=admin_headers, **kwargs)

    r = call("get", "/api/v1/conversations/2147483648")
    assert r.status_code == 404 and "2147483647" in r.json["message"], "past a 32-bit id column"
    assert call("get", "/api/v1/messages/2147483648").json["message"] == "no message with id 2147483648"
    assert call("get", f"/api/v1/messages/{2**63}").status_code == 404, "past a 64-bit id column"
    r = call("get", "/api/v1/tracked-links?campaign=%00")
    assert r.status_code == 422 and "NUL" in r.json["errors"]["query"]["campaign"][0]
    r = call("get", f"/api/v1/conversations?channel_id={2**70}")
    assert r.json["errors"]["query"]["channel_id"] == ["must be an id from 1 to 2147483647"]
    r = call("post", f"/api/v1/conversations/{seeded['conversation_id']}/assign", json={"assignee_id": 2**31})
    assert r.status_code == 422 and "assignee_id" in r.json["errors"]["json"]
    r = call("post", "/api/v1/connectors", json={"kind": "webhook", "name": "x" * 2_000_000, "settings": {}})
    assert r.status_code == 422 and r.json["errors"]["json"]["name"] == ["Length must be between 1 and 200."]
    r = call("post", "/api/v1/connectors", json={"kind": "webhook", "name": "a\x00b", "settings": {"url": "\x00"}})
    assert r.status_code == 422 and set(r.json["errors"]["json"]) == {"name", "settings"}
    assert "url" in r.json["errors"]["json"]["settings"], "free-form settings are screened too"
    r = call("post", "/api/v1/channels", data='{"name": "\\ud800"}', content_type="application/json")
    assert r.status_code == 422 and "surrogate" in r.json["errors"]["json"]["name"][0]
    assert call("post", "/api/v1/connectors", json=["not", "an", "object"]).status_code == 422
    assert call("post", "/api/v1/connectors", data="{", content_type="application/json").status_code == 400
    assert call("post", "/api/v1/connectors", data="kind=webhook").status_code == 415


def test_the_openapi_document_states_each_path_ids_range(client):
    width = {"channel_id": Channel, "conversation_id": Conversation, "message_id": Message, "template_id": Template,
             "connector_id": ConnectorRecord, "delivery_id": Delivery, "link_id": TrackedLink, "team_id": Team,
             "rule_id": RoutingRule, "user_id": User, "schedule_id": ReportSchedule, "audience_id": Audience,
             "broadcast_id": Broadcast, "scenario_id": Scenario, "run_id": Run, "contact_id": Contact,
             "merge_id": ContactMerge}
    spec = client.get("/api/v1/openapi.json").json
    params = [p for item in spec["paths"].values() for p in item.get("parameters", []) if p["in"] == "path"]
    assert params
    for param in params:
        assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": id_max(width[param["name"]])}, param
    assert id_max(Channel) == 2**31 - 1 and id_max(Message) == 2**63 - 1
