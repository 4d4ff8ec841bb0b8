"""The Flask app factory."""
from __future__ import annotations

import ipaddress
import logging
from typing import Any, Mapping
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from hub.platform.config import Config, load_config
from hub.shared.config_errors import ConfigError
from hub.platform.runtime import Runtime, setup_logging
from hub.shared.security import load_secret_key


log = logging.getLogger(__name__)


def is_local_address(base_url: str) -> bool:
    """Loopback, localhost, or a name reserved for tests (RFC 6761: *.localhost, *.test)
    that no public deployment can have: plain http there crosses no network."""
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith((".localhost", ".test")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(config: Config) -> None:
    """A hub reached over plain http from other machines sends passwords and session
    cookies in clear: refuse to start unless [web] allow_insecure says it is wanted."""
    if not config.base_url.startswith("http://") or is_local_address(config.base_url):
        return
    problem = (f"base_url {config.base_url} is plain http on another machine: admin passwords and "
               "session cookies would cross the network unencrypted")
    if not config.web.allow_insecure:
        log.warning("%s; refusing to start", problem)
        raise ConfigError(f"{problem}. Serve the hub over https (base_url = \"https://...\", e.g. behind "
                          "a TLS proxy with [web] trusted_proxies), or set [web] allow_insecure = true")
    log.warning("%s ([web] allow_insecure = true); use https in production", problem)


def _no_sniffing(response: Response) -> Response:
    """Every response is what its Content-Type says (a browser never runs an uploaded
    file as a script or page); t.js is served as text/javascript, so it still loads."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


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
        # Importing the WhatsApp rate card registers its check of the card the settings name.
        import hub.channels.whatsapp.billing.rate_card  # noqa: F401

        if config is None:
            config = load_config()
        elif not isinstance(config, Config):
            config = load_config(data=config)
    else:
        config = runtime.config
    setup_logging(config)
    check_transport(config)  # before anything connects to the database
    if runtime is None:
        runtime = Runtime.from_config(config)
    from hub.wiring import install_reactions

    install_reactions()  # routing and automations react to ingest, sends and closes
    secure = config.base_url.startswith("https://")

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=load_secret_key(config),
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,  # Meta caps webhook payloads at 3 MB
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    app.extensions["hub"] = runtime
    if config.web.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.web.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=config.web.trusted_proxies, x_host=config.web.trusted_proxies)
    app.session_interface = NoSessionForWebhooks()
    app.after_request(_no_sniffing)

    from hub.web import connector_hooks, health, home, media, webhooks
    from hub.web.api import init_api

    app.register_blueprint(health.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(connector_hooks.bp)
    app.register_blueprint(media.bp)
    from hub.web import tracking as tracking_pages
    app.register_blueprint(tracking_pages.bp)
    from hub.web import report_exports
    app.register_blueprint(report_exports.bp)
    init_api(app)
    from hub.web.admin import init_admin
    init_admin(app)
    return app


def runtime() -> Runtime:
    """The Runtime of the app handling the current request."""
    return current_app.extensions["hub"]
