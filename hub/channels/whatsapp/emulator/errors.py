"""Graph API error bodies as the WhatsApp emulator answers them.

One catalogue serves both places Meta reports errors: the synchronous HTTP answer
(`{"error": {...}}`, spec §6.5) and the asynchronous `errors[]` of a failed status
webhook (spec §4.3). Clients must branch on `code` (+ `error_data.details`), never on
the HTTP status or the title, so titles here are informative, not contractual.
"""
from __future__ import annotations

import secrets
import string
from typing import Any

ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# code -> (title, default details, HTTP status of a synchronous answer)
CATALOGUE: dict[int, tuple[str, str, int]] = {
    1: ("An unknown error occurred", "Invalid request or possible server error.", 500),
    2: ("Service temporarily unavailable", "Temporary due to downtime or due to being overloaded.", 503),
    100: ("Invalid parameter", "The request included one or more unsupported or misspelled parameters.", 400),
    190: ("Invalid OAuth access token - Cannot parse access token", "", 401),
    2500: ("Unknown path components", "", 400),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached.", 400),
    131000: ("Something went wrong", "Message failed to send due to an unknown error.", 500),
    131008: ("Required parameter is missing", "The request is missing a required parameter.", 400),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid.", 400),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same.", 400),
    131026: (
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a "
        "WhatsApp phone number; the recipient has not accepted the new Terms of Service; the "
        "recipient is using an old WhatsApp version.",
        400,
    ),
    131047: (
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
        400,
    ),
    131050: (
        "User stopped marketing messages",
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
        "messages on WhatsApp from your business.",
        400,
    ),
    131048: ("Spam rate limit hit", "Message failed to send because there are restrictions on how many "
             "messages can be sent from this phone number.", 400),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.", 400),
    130472: ("User's number is part of an experiment", "Failed to send message because this user's phone "
             "number is part of an experiment", 400),
    131051: ("Unsupported message type", "Message type is currently not supported.", 400),
    131053: ("Media upload error", "Unable to upload the media used in the message.", 400),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
        400,
    ),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values included in the request did not match the "
        "number of variable parameters defined in the template.",
        400,
    ),
    132001: (
        "Template name does not exist in the translation",
        "The template does not exist in the specified language or the template has not been "
        "approved.",
        400,
    ),
    132012: (
        "Parameter format does not match format in the created template",
        "Variable parameter values formatted incorrectly.",
        400,
    ),
}

_TRACE_ALPHABET = string.ascii_letters + string.digits + "_-"


def fbtrace_id() -> str:
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(22))


def title_of(code: int) -> str:
    return CATALOGUE.get(code, ("Error", "", 400))[0]


class GraphError(Exception):
    """An error the emulator answers with; `details` says what exactly was wrong."""

    def __init__(self, code: int, details: str | None = None, *, http_status: int | None = None,
                 subcode: int | None = None, title: str | None = None):
        known = CATALOGUE.get(code, ("Error", "", 400))
        self.code = code
        self.title = title or known[0]
        self.details = known[1] if details is None else details
        self.http_status = http_status or known[2]
        self.subcode = subcode
        super().__init__(f"({code}) {self.title}: {self.details}")

    def body(self) -> dict[str, Any]:
        """The synchronous answer, §6.5 shape. Code 190 carries Graph's plain OAuth body."""
        if self.code == 190:
            error: dict[str, Any] = {"message": self.title, "type": "OAuthException", "code": 190}
        else:
            error = {
                "message": f"(#{self.code}) {self.title}",
                "type": "OAuthException",
                "code": self.code,
                "error_data": {"messaging_product": "whatsapp", "details": self.details},
            }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.code in (1, 2, 131000):
            error["is_transient"] = True
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def webhook_error(self) -> dict[str, Any]:
        """The same error as an entry of a failed status's `errors[]` (§4.3)."""
        return webhook_error(self.code, self.details, title=self.title)


def webhook_error(code: int, details: str | None = None, *, title: str | None = None) -> dict[str, Any]:
    title = title or title_of(code)
    if details is None:
        details = CATALOGUE.get(code, ("", "", 0))[1]
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": details}, "href": ERROR_HREF}


def invalid(details: str) -> GraphError:
    """Code 100: unsupported, misspelled or wrongly typed parameters (Graph's own check)."""
    return GraphError(100, details)


def missing(details: str) -> GraphError:
    return GraphError(131008, details)


def bad_value(details: str) -> GraphError:
    return GraphError(131009, details)


def no_such_object(node_id: str, method: str) -> GraphError:
    """Graph's answer for an id that does not exist or the token may not see."""
    return GraphError(
        100,
        f"Unsupported {method} request. Object with ID '{node_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
        title=f"Unsupported {method} request",
    )


def bad_token(missing_header: bool) -> GraphError:
    if missing_header:
        return GraphError(190, title="An active access token must be used to query information "
                                     "about the current user.")
    return GraphError(190)
