import pytest

from hub.shared.phones import to_e164


@pytest.mark.parametrize("typed, region, expected", [
    ("+49 151 1234 5678", None, "+4915112345678"),
    ("4915112345678", None, "+4915112345678"),
    ("8 912 000-11-22", "RU", "+79120001122"),
    ("+7 912 000 11 22", "RU", "+79120001122"),
    ("", None, None),
    (None, None, None),
    ("call me", None, None),
    ("+1 23", None, None),
])
def test_numbers_as_people_type_them(typed, region, expected):
    assert to_e164(typed, region) == expected
