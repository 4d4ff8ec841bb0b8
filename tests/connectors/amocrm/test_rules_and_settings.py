"""Stage rules, the settings form and the small pure helpers."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st
from marshmallow import ValidationError

from connectors.amocrm import mapping, phpform, rules
from connectors.amocrm.settings import AmoCrmSettings, account_url_problem

BASE = {"base_url": "https://acme.amocrm.ru", "long_lived_token": "t"}


# -- rules --------------------------------------------------------------------------------
def test_rule_with_pipeline_positional_variables_and_fallback():
    rule = rules.parse_rule('7000001/142 -> order_delivered:en(contact.first_name, lead.field[ORDER_NO] | "your order")')
    assert (rule.pipeline_id, rule.status_id, rule.template, rule.language) == (7000001, 142, "order_delivered", "en")
    assert rule.matches(7000001, 142) and not rule.matches(7000002, 142) and not rule.matches(7000001, 143)
    assert rule.needs_contact()
    lead = {"id": 5, "name": "Order", "fields": {"ORDER_NO": ""}}
    assert rules.variables(rule, lead, {"first_name": "Ana"}) == ["Ana", "your order"]
    assert rules.variables(rule, {**lead, "fields": {"ORDER_NO": "1042"}}, {"first_name": "Ana"}) == ["Ana", "1042"]


def test_rule_named_variables_and_literals_with_commas():
    rule = rules.parse_rule('7000014 -> order_shipped:pt_BR(name=lead.name, note="today, by noon", id=lead.field[583921])')
    assert rule.pipeline_id is None and rule.named and not rule.needs_contact()
    got = rules.variables(rule, {"id": 1, "name": "Sofa", "fields": {"583921": "A-7"}}, None)
    assert got == {"name": "Sofa", "note": "today, by noon", "id": "A-7"}


def test_rule_without_variables():
    rule = rules.parse_rule("143 -> sorry_we_missed_you:en")
    assert rule.args == () and rules.variables(rule, {"id": 1}, None) == []


def test_missing_value_without_fallback_is_refused():
    rule = rules.parse_rule("142 -> thanks:en(contact.name)")
    with pytest.raises(rules.MissingValue, match="contact.name is empty"):
        rules.variables(rule, {"id": 9}, {"name": " "})


@pytest.mark.parametrize("text, message", [
    ("142 => thanks:en", "is not a rule"),
    ("stage 142 -> thanks:en", "is not a rule"),
    ("142 -> Thanks:en", "is not a rule"),
    ("142 -> thanks:english", "is not a rule"),
    ("142 -> thanks:en(deal.name)", "is not a variable"),
    ("142 -> thanks:en(lead.owner)", "lead.owner is unknown"),
    ("142 -> thanks:en(lead.field)", "use lead.field[ID or CODE]"),
    ("142 -> thanks:en(lead.name[1])", "use lead.field[ID or CODE]"),
    ("142 -> thanks:en(a=lead.name, lead.id)", "not mixed"),
    ("142 -> thanks:en(a=lead.name, a=lead.id)", "used twice"),
    ('142 -> thanks:en(lead.name | fallback)', 'one "quoted text"'),
    ('142 -> thanks:en("open)', "unbalanced quotes"),
    ("142 -> thanks:en(lead.name,,lead.id)", "empty variable"),
])
def test_bad_rules_say_what_is_wrong(text, message):
    with pytest.raises(rules.RuleError, match=re.escape(message)):
        rules.parse_rule(text)


def test_rules_checked_against_stored_templates():
    parsed = rules.parse_rules([
        "142 -> order_delivered:en(contact.name, lead.id)",
        "143 -> missing:en",
        "7000014 -> order_shipped:en(a=lead.id)",
        "7000013 -> invoice:en(lead.id)",
    ])
    templates = [
        {"name": "order_delivered", "language": "en", "status": "APPROVED", "parameters": 1},
        {"name": "missing", "language": "es", "status": "APPROVED", "parameters": 0},
        {"name": "order_shipped", "language": "en", "status": "APPROVED", "parameters": ["tracking"]},
        {"name": "invoice", "language": "en", "status": "PAUSED", "parameters": 1},
    ]
    problems = rules.check_templates(parsed, templates)
    assert problems == [
        "rule 1: template order_delivered:en takes 1 variables, the rule gives 2",
        "rule 2: no template 'missing' in language 'en' (it exists in es)",
        "rule 3: template order_shipped:en takes tracking, the rule gives a",
        "rule 4: template invoice:en is PAUSED, not APPROVED",
    ]


# -- settings -----------------------------------------------------------------------------
def test_minimal_long_lived_settings_get_defaults():
    loaded = AmoCrmSettings().load(BASE)
    assert loaded["deal_mode"] == "reuse_open" and loaded["existing_contacts"] == "search"
    assert loaded["source_fields"]["utm_source"] == "UTM_SOURCE"
    assert loaded["tags"] == ["WhatsApp"] and loaded["requests_per_second"] == 7.0


@pytest.mark.parametrize("url, ok", [
    ("https://acme.amocrm.ru", True), ("https://acme.kommo.com/", True), ("https://acme.amocrm.com", True),
    ("http://127.0.0.1:5001", True), ("http://acme.amocrm.ru", False), ("https://amocrm.ru", False),
    ("https://acme.example.com", False), ("https://acme.amocrm.ru/api/v4", False),
    ("https://a.b.amocrm.ru", False),
])
def test_account_address(url, ok):
    assert (account_url_problem(url) is None) == ok


@pytest.mark.parametrize("changes, field, message", [
    ({"long_lived_token": None}, "long_lived_token", "missing: client_id, client_secret, redirect_uri"),
    ({"long_lived_token": None, "client_id": "c", "client_secret": "s", "redirect_uri": "https://h.example/cb",
      "authorize_url": "www.amocrm.ru/oauth"}, "authorize_url", "starting with https://"),
    ({"status_id": 7000011}, "pipeline_id", "choose the pipeline"),
    ({"deal_name_template": "Deal {customer}"}, "deal_name_template", "unknown placeholder {customer}"),
    ({"deal_name_template": "Deal {contact_name"}, "deal_name_template", "bad placeholder syntax"),
    ({"source_fields": {"utm_source": "utm source"}}, "source_fields", "neither a field id"),
    ({"source_fields": {"utm_sauce": "UTM_SOURCE"}}, "source_fields", "Must be one of"),
    ({"stage_rules": ["142 -> thanks:en", "oops"]}, "stage_rules", "rule 2:"),
    ({"operator_users": {"not-an-email": 1}}, "operator_users", "email"),
    ({"requests_per_second": 10}, "requests_per_second", "less than or equal to 7"),
    ({"base_url": "https://acme.example.com"}, "base_url", "not an amoCRM or Kommo account address"),
])
def test_bad_settings_name_the_field(changes, field, message):
    with pytest.raises(ValidationError) as info:
        AmoCrmSettings().load({**BASE, **changes})
    assert field in info.value.messages, info.value.messages
    assert message.lower() in str(info.value.messages[field]).lower()


def test_rules_validated_against_templates_given_in_context():
    from marshmallow.experimental.context import Context

    data = {**BASE, "stage_rules": ["142 -> thanks:en(lead.name)"]}
    with Context({"whatsapp_templates": [{"name": "thanks", "language": "en", "parameters": 1}]}):
        AmoCrmSettings().load(data)
    with Context({"whatsapp_templates": [{"name": "thanks", "language": "es", "parameters": 1}]}):
        with pytest.raises(ValidationError, match="no template 'thanks' in language 'en'"):
            AmoCrmSettings().load(data)


# -- helpers -------------------------------------------------------------------------------
def test_phones_read_national_numbers_with_the_customers_region():
    contact = {"custom_fields_values": [{"field_code": "PHONE", "values": [
        {"value": "8 912 000-11-22"}, {"value": "+1 (555) 700-0002"}, {"value": "n/a"}]}]}
    assert mapping.phones(contact) == ["+15557000002"]
    assert mapping.phones(contact, mapping.region_of("+79120001122")) == ["+79120001122", "+15557000002"]
    assert mapping.national_digits("+79120001122") == "9120001122"


def test_contact_key_prefers_the_phone():
    assert mapping.contact_key({"id": 1, "phone": "+15557000001"}) == ("phone", "+15557000001")
    assert mapping.contact_key({"id": 1, "phone": None, "username": "ana"}) == ("wa_contact", "1")
    with pytest.raises(mapping.PayloadError):
        mapping.contact_key({"phone": None})


@pytest.mark.parametrize("setting, direction, wanted", [
    ("all", "in", True), ("all", "out", True), ("inbound", "out", False), ("outbound", "out", True),
    ("none", "in", False),
])
def test_timeline_setting(setting, direction, wanted):
    assert mapping.wants_note({"direction": direction, "text": "hi"}, setting) is wanted


def test_reaction_to_nothing_makes_no_note():
    assert not mapping.wants_note({"direction": "in", "type": "reaction", "text": None}, "all")


def test_long_source_values_are_cut_to_what_amocrm_keeps():
    cfv = mapping.source_fields({"landing_page": "https://shop.example/" + "x" * 400}, {"landing_page": "583922"})
    assert cfv[0]["field_id"] == 583922 and len(cfv[0]["values"][0]["value"]) == 255


json_scalars = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=12))
trees = st.recursive(
    st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), json_scalars, min_size=1, max_size=3),
    lambda children: st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True),
                                     st.one_of(children, st.lists(children, min_size=1, max_size=3)),
                                     min_size=1, max_size=3),
    max_leaves=12)


@given(trees)
def test_php_form_encoding_round_trips(tree):
    def stringify(node):
        if isinstance(node, dict):
            return {k: stringify(v) for k, v in node.items()}
        if isinstance(node, list):
            return [stringify(v) for v in node]
        return str(node)
    assert phpform.decode(phpform.encode(tree)) == stringify(tree)


def test_php_form_keeps_a_scalar_that_shares_a_path_with_nested_values():
    got = phpform.decode("a[note][type]=3&a[note][type][uuid]=x")
    assert got == {"a": {"note": {"type": {"": "3", "uuid": "x"}}}}
    with pytest.raises(phpform.FormError):
        phpform.decode_pairs([("[broken", "1")])


def test_rules_are_checked_against_the_hubs_stored_templates(runtime, amo):
    """The hub hands the Settings schema its synced templates; rules naming a template that
    does not exist, or with the wrong number of variables, are refused with the rule named."""
    import pytest

    from hub.crm.store import InvalidConnector, create_connector
    from tests.connectors.amocrm.conftest import long_lived_settings
    from hub.platform.db import utcnow
    from hub.models import Template

    with runtime.db.scope() as session:
        session.add(Template(waba_id="1", name="order_shipped", language="en", status="APPROVED",
                             category="UTILITY", components=[{"type": "BODY", "text": "Hi {{1}}, {{2}} shipped"}],
                             created_at=utcnow(), updated_at=utcnow()))
    good = long_lived_settings(amo, stage_rules=["7000001/142 -> order_shipped:en(contact.name, lead.name)"])
    with runtime.db.scope() as session:
        create_connector(session, runtime.vault, kind="amocrm", name="ok", settings=good, now=utcnow())
    for rule, problem in [("7000001/142 -> missing:en(contact.name)", "no template 'missing'"),
                          ("7000001/142 -> order_shipped:en(contact.name)", "takes 2 variables")]:
        with pytest.raises(InvalidConnector) as err:
            with runtime.db.scope() as session:
                create_connector(session, runtime.vault, kind="amocrm", name="bad",
                                 settings=long_lived_settings(amo, stage_rules=[rule]), now=utcnow())
        assert problem in str(err.value)
