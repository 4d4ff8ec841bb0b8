"""What WhatsApp's delivery failures and refusals mean, in words a CRM user can act on:
the texts the CRM connectors that carry WhatsApp conversations (amoCRM's chat, HubSpot's
inbox) show for a failed message or a closed 24-hour window."""
from __future__ import annotations

from typing import Any, Mapping

# Meta's error codes in words a manager or agent can act on (Cloud API error codes reference).
META_REASONS = {
    131026: "the customer's WhatsApp cannot receive it (not a WhatsApp number, an old app, or they blocked "
            "the business)",
    131047: "more than 24 hours have passed since the customer last wrote; only an approved template can be sent",
    131049: "Meta held it back to keep the customer's experience healthy (too many marketing messages); "
            "try later",
    131050: "the customer has stopped marketing messages from this business",
    131051: "WhatsApp does not support this kind of message",
    131052: "the customer's media could not be downloaded",
    131053: "the media could not be uploaded to WhatsApp (size or type)",
    131031: "the WhatsApp business account is locked",
    131042: "a payment problem on the WhatsApp business account",
    131045: "the business phone number is not registered",
    131021: "the sender and the recipient are the same number",
    131000: "something went wrong at WhatsApp; try again",
    130472: "Meta is running an experiment on this customer's number and did not deliver it",
    368: "the business is temporarily blocked for policy violations",
    470: "more than 24 hours have passed since the customer last wrote; only an approved template can be sent",
}


def failure_text(error: Mapping[str, Any] | None) -> str:
    """A failed message's reason: Meta's code in words, Meta's own detail when the code is
    not one of ours, and the code itself (at most 1,000 characters)."""
    if not error:
        return "WhatsApp did not deliver the message"
    code = error.get("code")
    words = META_REASONS.get(code) if isinstance(code, int) else None
    detail = str(error.get("details") or error.get("title") or "").strip()
    head = f"WhatsApp did not deliver it: {words or detail or 'unknown reason'}"
    tail = f" (Meta error {code}{': ' + detail if detail and words else ''})" if code is not None else ""
    return (head + tail)[:1000]


def not_sendable(conversation_id: Any, text: str | None, *, thread: str) -> str | None:
    """Why a message a CRM user typed into a `thread` (amoCRM's chat, HubSpot's inbox thread)
    cannot go to WhatsApp, or None when it can."""
    if conversation_id is None:
        return f"This {thread} is not a WhatsApp conversation of the hub; nothing was sent."
    if not text:
        return "Only text (and files as links) can be sent to WhatsApp from here; nothing was sent."
    return None


def refusal_text(result: Mapping[str, Any]) -> str:
    """What a CRM user is told of their message the hub refused to send (the hub's result)."""
    detail = str(result.get("detail") or "")
    if detail.startswith("window_closed"):
        return window_closed_text(result.get("templates"))
    return f"Not sent to WhatsApp: {detail}"[:1000]


def window_closed_text(templates: list[dict[str, Any]] | None) -> str:
    """A reply refused because the 24-hour window is closed, naming up to ten approved templates."""
    names = ", ".join(f"{t.get('name')} ({t.get('language')})" for t in (templates or [])[:10])
    hint = (f" Approved templates: {names}." if names else
            " No approved template exists yet: create one in WhatsApp Manager.")
    return ("Not sent to WhatsApp: the customer last wrote more than 24 hours ago, so only an approved "
            "template can be sent now; send one from the hub." + hint)[:1000]
