"""The Flask app factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask, Request, current_app
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from hub.config import Config, load_config
from hub.runtime import Runtime, setup_logging
from hub.security import load_secret_key


class NoSessionForWebhooks(SecureCookieSessionInterface):
    """Webhook senders are machines that keep no cookies: requests under /webhooks/ get
    no session, which spares every webhook the signed cookie's setup (a measurable share
    of the hottest route's cost). Everything else keeps Flask's cookie session."""

    def open_session(self, app: Flask, request: Request):  # type: ignore[override]
        if request.path.startswith("/webhooks/"):
            return None  # Flask then uses a NullSession and saves nothing
        return super().open_session(app, request)


def create_app(config: Config | Mapping[str, Any] | None = None, *, runtime: Runtime | None = None) -> Flask:
    if runtime is None:
        if config is None:
            config = load_config()
        elif not isinstance(config, Config):
            config = load_config(data=config)
        runtime = Runtime.from_config(config)
    config = runtime.config
    setup_logging(config)

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=load_secret_key(config),
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,  # Meta caps webhook payloads at 3 MB
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.base_url.startswith("https://"),
    )
    app.extensions["hub"] = runtime
    if config.web.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.web.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=config.web.trusted_proxies, x_host=config.web.trusted_proxies)
    app.session_interface = NoSessionForWebhooks()

    from hub.web import connector_hooks, health, home, media, webhooks
    from hub.web.api import init_api

    app.register_blueprint(health.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(connector_hooks.bp)
    app.register_blueprint(media.bp)
    from hub.web import tracking as tracking_pages
    app.register_blueprint(tracking_pages.bp)
    init_api(app)
    from hub.web.admin import init_admin
    init_admin(app)
    return app


def runtime() -> Runtime:
    """The Runtime of the app handling the current request."""
    return current_app.extensions["hub"]
