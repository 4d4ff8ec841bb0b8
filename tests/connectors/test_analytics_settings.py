"""The settings every analytics destination shares (connectors/analytics.py): the currency,
the timeout and the goals, each refused by its own field with the reason."""
from __future__ import annotations

import re

import pytest
from marshmallow import Schema, ValidationError

from connectors import analytics
from connectors.metrica import MetricaConnector


class Form(Schema):
    currency = analytics.currency_field("EUR")
    timeout_seconds = analytics.timeout_field(20.0, most=120)


def test_the_defaults_and_good_values_load():
    assert Form().load({}) == {"currency": "EUR", "timeout_seconds": 20.0}
    assert Form().load({"currency": "BRL", "timeout_seconds": 120}) == {"currency": "BRL", "timeout_seconds": 120.0}
    assert analytics.timeout_field().load_default == 10.0


@pytest.mark.parametrize("field, value, words", [
    ("currency", "eur", "a three-letter ISO code, e.g. EUR"),
    ("currency", "EURO", "a three-letter ISO code, e.g. EUR"),
    ("timeout_seconds", 0.5, "greater than or equal to 1"),
    ("timeout_seconds", 121, "less than or equal to 120"),
])
def test_a_bad_value_is_refused_by_its_field(field, value, words):
    with pytest.raises(ValidationError) as info:
        Form().load({field: value})
    assert list(info.value.messages) == [field] and words in info.value.messages[field][0]


def test_goals_are_parsed_or_refused_with_the_line_and_the_destinations_rule():
    [goal] = analytics.settings_goals(["# a comment", "won -> purchase = amount"],
                                      name_pattern=re.compile(r"^[a-z]+$"), name_rule="is not lower case")
    assert (goal.trigger, goal.name) == ("won", "purchase")
    with pytest.raises(ValidationError, match=r"line 2: 'Purchase' is not lower case"):
        analytics.settings_goals(["won -> ok", "lost -> Purchase"], name_pattern=re.compile(r"^[a-z]+$"),
                                 name_rule="is not lower case")


def test_metrica_keeps_its_own_currency_and_longer_timeout():
    fields = MetricaConnector.Settings().fields
    assert fields["currency"].load_default == "RUB" and fields["timeout_seconds"].load_default == 20.0
