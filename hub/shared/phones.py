"""Phone numbers as people and CRMs type them, to E.164 ("+4915112345678")."""
from __future__ import annotations

import functools
import re

import phonenumbers

_NOT_DIGITS = re.compile(r"\D")


def to_e164(text: str | None, region: str | None = None) -> str | None:
    """The E.164 form, or None when absent or not a possible number. Without `region` a
    number must carry its country code ("+49 151 ...", "49151..."); with it (e.g. "RU"),
    numbers written the national way ("8 912 000-11-22") are read too."""
    if not text:
        return None
    return _to_e164(str(text).strip(), region)


@functools.lru_cache(maxsize=4096)
def _to_e164(text: str, region: str | None) -> str | None:
    """Cached: a connector reads the same customer's number for every event of a chat,
    and parsing it costs more than the rest of mapping the event."""
    try:
        if region and not text.startswith("+"):
            number = phonenumbers.parse(text, region)
        else:
            digits = _NOT_DIGITS.sub("", text)
            if not digits:
                return None
            number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
