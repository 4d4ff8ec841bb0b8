"""Meta's error codes a broadcast meets, in plain words, and which are worth a retry."""
from __future__ import annotations

EXPLAINED: dict[int, tuple[str, bool]] = {
    131049: ("Meta held the message back to keep the person's marketing inbox healthy (per-user marketing "
             "limit); try again in a day or more", True),
    131026: ("the message could not be delivered: the number may not be on WhatsApp, may use an old app "
             "version, or has not accepted the new terms", False),
    131047: ("more than 24 hours since the person last wrote: only a template can be sent (re-engagement)", True),
    130472: ("the number is in a Meta experiment that holds back some marketing messages", True),
    131050: ("the person stopped marketing messages from this business in WhatsApp", False),
    131048: ("spam rate limit: too many of this number's messages were blocked or reported; slow down", True),
    131056: ("too many messages to this person in a short time (pair rate limit)", True),
    130429: ("the number's throughput was exceeded (messages per second)", True),
    131000: ("something went wrong at Meta", True),
    131016: ("WhatsApp was overloaded; try again", True),
    132000: ("the template's variables do not match it (count or format)", False),
    132001: ("the template does not exist in that language, or is not approved", False),
    132015: ("the template is paused for its low quality", True),
    132016: ("the template is disabled for its low quality", False),
    131021: ("the recipient is the sender's own number", False),
    131042: ("a payment problem on the WhatsApp Business Account", True),
}


def explain(code: int | None, title: str | None = None) -> str:
    if code is None:
        return title or ""
    known = EXPLAINED.get(code)
    return known[0] if known else (title or f"error {code}")


def retryable(code: int | None) -> bool:
    """Worth sending again in a new broadcast (not a refusal that will repeat)."""
    known = EXPLAINED.get(code) if code is not None else None
    return bool(known and known[1])
