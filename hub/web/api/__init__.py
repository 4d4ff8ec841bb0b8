"""The REST API under /api/v1 (flask-smorest: OpenAPI from the same schemas)."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from hub import __version__
from hub.web.api import parsing


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE="hub",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
        API_SPEC_OPTIONS={
            "security": [{"bearerAuth": []}],
            "info": {"description": "WhatsApp conversations into CRMs. Every call needs "
                                    "`Authorization: Bearer <API token>` (`hub token create`)."},
        },
    )
    api = Api(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    # Before any route is added: routes use <id:...> and <bigid:...> for row ids.
    app.url_map.converters.update(id=parsing.IdConverter, bigid=parsing.BigIdConverter)
    for converter in (parsing.IdConverter, parsing.BigIdConverter):
        api.register_converter(converter, parsing.converter_schema)

    from hub.channels.base import SendRefused
    from hub.web.api import channels, connectors, conversations, deliveries, messages, templates_api
    from hub.web.api import automations, broadcasts, reports, routing, telegram_channels, tracking
    from hub.web.api import contacts, instagram_channels

    for blueprint in (telegram_channels.blp, instagram_channels.blp, channels.blp, conversations.blp, messages.blp,
                      templates_api.blp, connectors.blp, deliveries.blp, tracking.blp, routing.blp, reports.blp,
                      reports.schedules, broadcasts.blp, automations.blp, contacts.blp):
        assert isinstance(blueprint, parsing.Blueprint), "API blueprints read input with parsing.ApiParser"
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
    app.register_error_handler(SendRefused, _send_refused)
    app.extensions["hub.api"] = api
    return api


def _send_refused(exc):
    """409 window_closed / opted_out, 404, 422 template_invalid: what and why, and what
    could be sent instead."""
    from flask import jsonify
    from werkzeug.http import HTTP_STATUS_CODES

    body = {"code": exc.status, "status": HTTP_STATUS_CODES.get(exc.status, ""), "error": exc.code,
            "message": str(exc), **exc.details}
    return jsonify(body), exc.status
