"""GET /media/<message id>?expires=...&signature=...: a message's media through a signed
link (hub.shared.media_links), for CRM users without an API token."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from hub.channels.media import MediaUnavailable, fetch_media
from hub.platform.db import utcnow

bp = Blueprint("media", __name__)


@bp.get("/media/<int:message_id>")
def signed_media(message_id: int):
    runtime = current_app.extensions["hub"]
    problem = runtime.media_links.check(
        message_id, request.args.get("expires", ""), request.args.get("signature", ""), now=utcnow())
    if problem:
        return jsonify(error=problem), 403
    try:
        media = fetch_media(runtime, message_id)
    except MediaUnavailable as exc:
        return jsonify(error=exc.message), exc.status
    return Response(media.data, mimetype=media.content_type,
                    headers={"Content-Disposition": f'inline; filename="{media.filename}"',
                             "Cache-Control": "private, max-age=300"})
