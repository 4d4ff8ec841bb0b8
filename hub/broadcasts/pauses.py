"""Why a broadcast is paused: an English sentence for the API and the events (as they
always said it), and the same cause as a code with its parameters (kept in
Broadcast.paused_cause), so that a page can say it in its reader's language."""
from __future__ import annotations

from typing import Any, NamedTuple


class Cause(NamedTuple):
    by: str  # paused_by: quality | template | failures | user
    reason: str  # paused_reason, in English
    detail: dict[str, Any]  # paused_cause: {"code": ..., and the parameters of the reason}


def quality(rating: str) -> Cause:
    return Cause("quality", f"the number's quality rating is {rating}", {"code": "quality", "rating": rating})


def template_missing(name: str, language: str) -> Cause:
    return Cause("template", f"template {name} ({language}) no longer exists",
                 {"code": "template_missing", "name": name, "language": language})


def template_status(name: str, language: str, status: str) -> Cause:
    return Cause("template", f"template {name} ({language}) is {status}",
                 {"code": "template_status", "name": name, "language": language, "status": status})


def failures(failed: int, last: int, threshold: float) -> Cause:
    return Cause("failures", f"{failed} of the last {last} messages failed, over the threshold of {threshold:.0%}",
                 {"code": "failures", "failed": failed, "last": last, "threshold": threshold})


def by_hand() -> Cause:
    return Cause("user", "paused by hand", {"code": "by_hand"})
