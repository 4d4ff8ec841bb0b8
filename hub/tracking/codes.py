"""Tracking codes: minting them, and finding them again in what a user actually sent.

A visit's code rides inside the prefilled WhatsApp text. People edit that text before
sending: they add words around it, change case, let the keyboard put spaces in it, type
it again with Cyrillic look-alike letters, forward it. Finding the code is therefore a
scan for runs of letters and digits (joined across spaces and hyphens, and across a
switch of script) whose normalised form could be a code; the database then says which,
if any, is live. Codes avoid 0/O and 1/I/L, and every minted code holds a letter and at
least two digits, so an ordinary word is never taken for one.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
MIN_DIGITS = 2
STATIC_MIN, STATIC_MAX = 4, 16
SCAN_LIMIT = 4096  # characters of a message searched; codes sit near the start anyway
MAX_CANDIDATES = 200

# Upper-case Cyrillic and Greek letters that look like Latin ones (or like a digit: З).
_LOOKALIKES = str.maketrans({
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "З": "3", "Ѕ": "S", "І": "I", "Ј": "J",
    "Ԛ": "Q", "Ԝ": "W", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I",
    "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
# What may sit between two parts of one code: spaces of any kind, hyphens, dots.
_JOINERS = frozenset(" \t\u00a0\u2009\u200a\u202f\u2007-\u2010\u2011\u2012\u2013_.·")
_MAX_JOIN = 3  # at most this many joiner characters between two parts


_UNBIASED = 256 - 256 % len(ALPHABET)  # bytes at or above this would favour some letters


def mint_code() -> str:
    """A fresh random code: 6 characters of ALPHABET with a letter and two digits.

    Drawn from one call to the OS's random source per try (every click mints one):
    bytes that would bias the alphabet are skipped, so each character stays uniform."""
    while True:
        picked = [ALPHABET[b % len(ALPHABET)] for b in secrets.token_bytes(2 * CODE_LENGTH) if b < _UNBIASED]
        code = "".join(picked[:CODE_LENGTH])
        if len(code) == CODE_LENGTH and is_visit_code(code):
            return code


def is_visit_code(code: str) -> bool:
    """Could this (normalised) string be a minted code?"""
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return False
    digits = sum(c.isdigit() for c in code)
    return MIN_DIGITS <= digits < CODE_LENGTH


def normalise_static_code(value: str) -> str:
    """A static code as stored and matched: upper case, look-alikes folded, no spaces."""
    out = []
    for ch in value:
        mapped = _code_char(ch)
        if mapped:
            out.append(mapped)
        elif ch in _JOINERS:
            continue
        else:
            raise ValueError(f"{ch!r} is not allowed: use Latin letters and digits")
    return "".join(out)


def static_code_problem(code: str) -> str | None:
    """Why a (normalised) static code cannot be used, or None."""
    if not STATIC_MIN <= len(code) <= STATIC_MAX:
        return f"must have {STATIC_MIN} to {STATIC_MAX} letters and digits"
    if not any(c.isdigit() for c in code) or not any(c.isalpha() for c in code):
        return "must mix letters and digits, so an ordinary word or number is never taken for it"
    if is_visit_code(code):
        return (f"looks like a per-visit code ({CODE_LENGTH} characters of {ALPHABET}); "
                "make it shorter or longer")
    return None


def _code_char(ch: str) -> str | None:
    """The code character `ch` stands for (after NFKC, upper case, look-alikes), or None."""
    norm = unicodedata.normalize("NFKC", ch).upper().translate(_LOOKALIKES)
    if len(norm) == 1 and ("A" <= norm <= "Z" or "0" <= norm <= "9"):
        return norm
    return None


def _script(ch: str) -> str:
    if ch.isdigit():
        return ""  # digits belong to whichever letters they stand next to
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0]  # LATIN, CYRILLIC, GREEK, FULLWIDTH, ...


@dataclass(frozen=True)
class Part:
    """A run of characters that all stand for code characters, in one script."""

    chars: str
    start: int
    end: int


@dataclass(frozen=True)
class Candidate:
    code: str  # normalised
    start: int  # span in the original text
    end: int


def _parts(text: str) -> list[Part]:
    parts: list[Part] = []
    chars: list[str] = []
    start = 0
    script = ""
    for i, ch in enumerate(text):
        mapped = _code_char(ch)
        if mapped is None:
            if chars:
                parts.append(Part("".join(chars), start, i))
                chars = []
            continue
        ch_script = _script(ch)
        if chars and ch_script and script and ch_script != script:
            parts.append(Part("".join(chars), start, i))  # "номерK7Q2M4": two parts
            chars = []
        if not chars:
            start, script = i, ""
        chars.append(mapped)
        script = ch_script or script
    if chars:
        parts.append(Part("".join(chars), start, len(text)))
    return parts


def _joinable(text: str, left: Part, right: Part) -> bool:
    gap = text[left.end:right.start]
    return len(gap) <= _MAX_JOIN and all(c in _JOINERS for c in gap)


def candidates(text: str | None) -> list[Candidate]:
    """Every string in `text` that could be a code, in order of appearance: single parts
    and parts joined across spaces/hyphens, 4 to 16 characters long."""
    if not text:
        return []
    text = text[:SCAN_LIMIT]
    parts = _parts(text)
    found: list[Candidate] = []
    seen: set[tuple[str, int]] = set()
    for i, first in enumerate(parts):
        code = ""
        for j in range(i, len(parts)):
            if j > i and not _joinable(text, parts[j - 1], parts[j]):
                break
            code += parts[j].chars
            if len(code) > STATIC_MAX:
                break
            if len(code) >= STATIC_MIN and (code, first.start) not in seen:
                seen.add((code, first.start))
                found.append(Candidate(code, first.start, parts[j].end))
                if len(found) >= MAX_CANDIDATES:
                    return found
    return found


_SENTENCE_END = re.compile(r"[.!?\n…]")
_LEFT_DEBRIS = " \t#№:([{«\"'-–—"
_RIGHT_DEBRIS = " \t)]}»\"'.,;:!-–—"


def _fragment_pattern(fragment: str) -> str:
    """A regex matching `fragment` whatever the spacing and case."""
    return r"\s*".join(re.escape(c) for c in fragment if not c.isspace())


def clean_text(text: str, span: tuple[int, int], template: str | None = None) -> str:
    """What the user wrote, without the code and the words that introduce it.

    The template's words right before "{code}" (back to the sentence start, e.g.
    "My request number:") and right after it (to the sentence end) are dropped when the
    user left them in place; everything the user added stays."""
    before, after = text[:span[0]], text[span[1]:]
    if template and "{code}" in template:
        prefix, _, suffix = template.partition("{code}")
        label = _SENTENCE_END.split(prefix)[-1].strip()
        if label:
            m = re.search(_fragment_pattern(label) + r"\s*$", before, re.IGNORECASE)
            if m:
                before = before[:m.start()]
        tail = _SENTENCE_END.split(suffix)[0].strip()
        if tail:
            m = re.match(r"\s*" + _fragment_pattern(tail), after, re.IGNORECASE)
            if m:
                after = after[m.end():]
    before = before.rstrip(_LEFT_DEBRIS)
    after = after.lstrip(_RIGHT_DEBRIS)
    joined = f"{before} {after}" if before and after else before or after
    return re.sub(r"[ \t]{2,}", " ", joined).strip()
