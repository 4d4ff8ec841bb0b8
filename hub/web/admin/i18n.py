"""Languages of the admin (English, Russian) with Flask-Babel.

The catalogues ship as .po files (hub/translations); the .mo files Flask-Babel reads are
compiled from them at start-up when missing or older, so a checkout or an sdist needs no
build step. When the package folder is read-only they are compiled into data_dir.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, request, session
from flask_babel import Babel

log = logging.getLogger(__name__)

LANGUAGES = {"en": "English", "ru": "Русский"}
SOURCE_DIR = Path(__file__).resolve().parent.parent.parent / "translations"


def compile_catalogues(source: Path, target: Path) -> Path:
    """Compile every <lang>/LC_MESSAGES/messages.po under `source` whose .mo under
    `target` is missing or stale; returns `target`."""
    for po in sorted(source.glob("*/LC_MESSAGES/*.po")):
        mo = target / po.relative_to(source).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name)
        tmp = mo.with_name(f"{mo.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog)
        tmp.replace(mo)  # atomic: another process may be reading the catalogue
    return target


def _translation_dir(data_dir: str) -> Path:
    try:
        return compile_catalogues(SOURCE_DIR, SOURCE_DIR)
    except OSError:
        fallback = Path(data_dir) / "translations"
        log.info("translations folder is read-only; compiling catalogues into %s", fallback)
        return compile_catalogues(SOURCE_DIR, fallback)


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(list(LANGUAGES))
    return best or current_app.extensions["hub"].config.admin.default_language


def init(app: Flask) -> None:
    config = app.extensions["hub"].config
    directory = _translation_dir(config.data_dir)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(directory)
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    app.config["BABEL_DEFAULT_TIMEZONE"] = "UTC"
    Babel(app, locale_selector=select_locale)


def _register_routes() -> None:
    from flask import redirect

    from hub.web.admin import bp
    from hub.web.admin.auth import safe_next

    @bp.get("/language/<code>")
    def set_language(code: str):  # type: ignore[no-untyped-def]
        """Remembered in the session; open to everyone (the sign-in page has the switch too)."""
        if code in LANGUAGES:
            session["lang"] = code
        return redirect(safe_next(request.args.get("next")))


_register_routes()
