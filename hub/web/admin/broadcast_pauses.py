"""A paused broadcast's reason in the admin's language, from the cause the pause kept
(Broadcast.paused_cause); the stored English sentence is what the API and the events say."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _, lazy_gettext as _l

from hub.web.admin import bp

# hub.broadcasts.pauses: a cause's code -> its sentence, with the cause's parameters.
PAUSE_TEXTS = {
    "quality": _l("the number's quality rating is %(rating)s"),
    "template_missing": _l("template %(name)s (%(language)s) no longer exists"),
    "template_status": _l("template %(name)s (%(language)s) is %(status)s"),
    "failures": _l("%(failed)s of the last %(last)s messages failed, over the threshold of %(threshold)s"),
    "by_hand": _l("paused by hand"),
}


def pause_text(cause: dict[str, Any] | None, reason: str | None) -> str:
    """The cause's sentence translated; a pause kept without a cause (before causes were
    kept) or with a code this version does not know shows its stored reason."""
    text = PAUSE_TEXTS.get((cause or {}).get("code"))
    if text is None:
        return _(reason) if reason else ""
    params = {key: value for key, value in cause.items() if key != "code"}
    if "threshold" in params:
        params["threshold"] = f"{float(params['threshold']):.0%}"
    try:
        return str(text) % params
    except (KeyError, TypeError, ValueError):  # a cause missing a parameter its sentence names
        return _(reason) if reason else ""


@bp.app_template_filter("pause_reason")
def pause_reason(broadcast: Any) -> str:
    return pause_text(broadcast.paused_cause, broadcast.paused_reason)
