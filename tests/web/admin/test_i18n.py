"""The admin's languages: the Russian catalogue covers every English text with the same
placeholders, compiles, and the catalogue template is current."""
from __future__ import annotations

import re
import subprocess
import sys

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from hub.web.admin.i18n import SOURCE_DIR, compile_catalogues
from tests.support.paths import ROOT

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def catalogue():
    with (SOURCE_DIR / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale="ru")


def test_every_text_has_a_russian_translation_with_the_same_placeholders():
    missing, mismatched = [], []
    for message in catalogue():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings) or message.fuzzy:
            missing.append(ids[0])
            continue
        wanted = set(PLACEHOLDER.findall(ids[0]))
        if any(set(PLACEHOLDER.findall(s)) != wanted for s in strings):
            mismatched.append(ids[0])
    assert missing == [] and mismatched == []


def test_catalogue_template_is_up_to_date(tmp_path):
    """Every text marked in the admin's code and templates, and every label and help of
    the connectors' settings forms, is in the catalogue."""
    root = ROOT
    out = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    str(SOURCE_DIR / "babel.cfg"), "-k", "_l", "--no-location", "--omit-header", "-o", str(out),
                    "hub/web/admin", "hub/web/templates/admin", "connectors"], cwd=root, check=True,
                   capture_output=True)
    with out.open("rb") as fh:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue() if m.id}
    assert sorted(extracted - translated) == [], "run `make translations` and translate the new texts"


def test_catalogues_compile_and_are_recompiled_when_stale(tmp_path):
    target = compile_catalogues(SOURCE_DIR, tmp_path)
    mo = target / "ru" / "LC_MESSAGES" / "messages.mo"
    with mo.open("rb") as fh:
        compiled = read_mo(fh)
    assert compiled.get("Sign in").string == "Войти"
    before = mo.stat().st_mtime_ns
    compile_catalogues(SOURCE_DIR, tmp_path)
    assert mo.stat().st_mtime_ns == before  # up to date: left alone


def test_connector_forms_speak_russian(app, runtime):
    from tests.support.admin import signed_in

    admin = signed_in(app, runtime, "admin")
    admin.get("/admin/language/ru?next=/admin/")
    for kind, label, help_text in (
            ("amocrm", "Адрес аккаунта", "Ваш аккаунт amoCRM или Kommo"),
            ("bitrix24", "Адрес портала", "Адрес вашего Битрикс24."),
            ("hubspot", "Access-токен приватного приложения", "Права: crm.objects.contacts read/write")):
        page = admin.get(f"/admin/connectors/new/{kind}").get_data(as_text=True)
        assert label in page and help_text in page, kind
