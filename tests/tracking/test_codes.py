"""Finding a visit's code in what people really send, and the text without it."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.tracking.codes import (
    ALPHABET, CODE_LENGTH, candidates, clean_text, is_visit_code, mint_code, normalise_static_code,
    static_code_problem,
)

CODE = "K7Q2M4"
TEMPLATE = "Hello! My request number: {code}"


def visit_codes(text: str) -> list[str]:
    return [c.code for c in candidates(text) if is_visit_code(c.code)]


@pytest.mark.parametrize("text", [
    "Hello! My request number: K7Q2M4",  # sent as prefilled
    "hello! my request number: k7q2m4",  # lower-cased by the keyboard or the user
    "Hi, I saw your sofa ad. My request number: K7Q2M4 - is the grey one in stock?",  # edited around
    "K7Q2M4 is my request number. Hello! Do you deliver on Sundays?",  # reordered
    "👋😊 Hello! My request number: K7Q2M4 🛋️🔥",  # emoji
    "Здравствуйте! Номер заявки: K7Q2M4. Есть ли диван в наличии?",  # a Cyrillic template
    "Номер заявки: К7Q2М4",  # К and М typed again on a Cyrillic keyboard
    "номерK7Q2M4",  # the space deleted between a Cyrillic word and the code
    "Пересланное сообщение\nHello! My request number: K7Q2M4",  # forwarded with a header
    "My request number: K7Q 2M4",  # the code split by a space
    "My request number: K 7 Q 2 M 4",  # split everywhere
    "My request number: K7Q-2M4",  # hyphenated
    "My request number: K7Q\u00a02M4",  # a non-breaking space
    "My request number: Ｋ７Ｑ２Ｍ４",  # full-width characters
    "My request number:\nK7Q2M4",  # wrapped onto a new line
    "Request (K7Q2M4), thanks",
    "Заявка №K7Q2M4!",
    "Hello! My request number: #k7Q2m4?? Also what are your hours",
])
def test_the_code_is_found_in_realistic_texts(text):
    assert CODE in visit_codes(text)


@pytest.mark.parametrize("text", [
    "Olá! Is my order #1042 shipped?",
    "Call me back on +7 912 345-67-89 please",
    "I want 2 sofas and 3 chairs, price 25 EUR 99 cents?",
    "Thanks, see you tomorrow at 10:30",
    "Здравствуйте! Сколько стоит доставка в Казань?",
    "ORDER ABC123 / invoice 2024-05-17",
    "",
])
def test_ordinary_texts_yield_no_visit_code(text):
    assert visit_codes(text) == []


def test_a_code_inside_a_longer_word_is_not_taken():
    assert CODE not in visit_codes("AK7Q2M4B and XYK7Q2M4")


def test_candidates_come_in_text_order_with_their_span():
    text = "first A2B3C4 then K7Q2M4"
    found = [c for c in candidates(text) if is_visit_code(c.code)]
    assert [c.code for c in found] == ["A2B3C4", CODE]
    assert text[found[1].start:found[1].end] == CODE


def test_a_long_text_is_scanned_only_at_its_start():
    text = "x " * 5000 + CODE
    assert visit_codes(text) == []
    assert len(candidates("A2B3C4 " * 2000)) <= 200


def test_minted_codes_are_well_formed_and_varied():
    codes = {mint_code() for _ in range(2000)}
    assert len(codes) > 1990  # 31^6 possibilities
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
        assert sum(c.isdigit() for c in code) >= 2 and any(c.isalpha() for c in code)
        assert not set(code) & set("01OIL")


def _mangle(code: str, rnd: random.Random) -> str:
    out = []
    for i, ch in enumerate(code):
        if i and rnd.random() < 0.3:
            out.append(rnd.choice([" ", "-", "\u00a0"]))
        out.append(ch.lower() if rnd.random() < 0.5 else ch)
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(before=st.text(alphabet="abcdefghz ABCXYZ абвгдеЖЗИ😀🙏,.!?0123456789", max_size=60),
       after=st.text(alphabet="abcdefghz ABCXYZ абвгдеЖЗИ😀🙏,.!?0123456789", max_size=60),
       seed=st.integers(0, 2**32))
def test_a_minted_code_survives_case_spacing_and_surrounding_text(before, after, seed):
    rnd = random.Random(seed)
    code = ""
    while not is_visit_code(code):
        code = "".join(rnd.choice(ALPHABET) for _ in range(CODE_LENGTH))
    text = f"{before}: {_mangle(code, rnd)}!\n{after}"
    assert code in visit_codes(text)


@pytest.mark.parametrize("text, expected", [
    ("Hello! My request number: K7Q2M4", "Hello!"),
    ("Hello! My request number: K7Q2M4. Do you have the grey sofa?", "Hello! Do you have the grey sofa?"),
    ("hello! my request   number: k7q 2m4 need a sofa", "hello! need a sofa"),
    ("Do you deliver? K7Q2M4", "Do you deliver?"),
    ("Hi (K7Q2M4) there", "Hi there"),
])
def test_clean_text_drops_the_code_and_its_label(text, expected):
    found = next(c for c in candidates(text) if c.code == CODE)
    assert clean_text(text, (found.start, found.end), TEMPLATE) == expected


def test_clean_text_with_the_code_in_the_middle_of_the_template():
    template = "Hi! Code {code} from the website"
    text = "Hi! Code K7Q2M4 from the website. Is it open on Sunday?"
    found = next(c for c in candidates(text) if c.code == CODE)
    assert clean_text(text, (found.start, found.end), template) == "Hi! Is it open on Sunday?"


@pytest.mark.parametrize("raw, normalised, problem", [
    ("qr24", "QR24", None),
    ("Flyer 2025", "FLYER2025", None),
    ("ВЕСНА24", "BECHA24", None),  # Cyrillic look-alikes fold to Latin
    ("SPRING", "SPRING", "mix letters and digits"),
    ("2024", "2024", "mix letters and digits"),
    ("A1", "A1", "4 to 16"),
    ("K7Q2M4", "K7Q2M4", "per-visit code"),
    ("A" * 17 + "1", "A" * 17 + "1", "4 to 16"),
])
def test_static_code_rules(raw, normalised, problem):
    assert normalise_static_code(raw) == normalised
    found = static_code_problem(normalised)
    assert (found is None) if problem is None else (problem in found)


def test_static_code_with_other_characters_is_refused():
    with pytest.raises(ValueError, match="not allowed"):
        normalise_static_code("QR/24")


def test_a_static_code_is_found_split_by_the_user():
    assert "FLYER2025" in [c.code for c in candidates("Hi, code from the flyer: flyer 2025")]
