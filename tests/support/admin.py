"""Admin test helpers: sign in through the form and post forms with their CSRF token."""
from __future__ import annotations

import html as html_lib
import re

from hub.platform.db import utcnow
from hub.models.users import create_user

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


_ERROR = re.compile(r'<p class="error"[^>]*>(.*?)</p>', re.S)


def field_errors(html: str, name: str) -> list[str]:
    """The error texts shown beside one form field (inside its id="field-<name>" block)."""
    start = html.find(f'id="field-{name}"')
    assert start >= 0, f"no field {name} in the page"
    end = min([i for i in (html.find('id="field-', start + 10), html.find("</form>", start)) if i > 0])
    return [html_lib.unescape(m.strip()) for m in _ERROR.findall(html[start:end])]


def make_user(runtime, role: str, email: str | None = None, name: str = "") -> int:
    with runtime.db.scope() as session:
        return create_user(session, email=email or f"{role}@example.com", password=PASSWORD, role=role,
                           name=name, now=utcnow()).id


def csrf_token(client, page: str = "/admin/login") -> str:
    html = client.get(page).get_data(as_text=True)
    found = _CSRF.search(html)
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def post(client, url: str, data: dict | None = None, *, page: str = "/admin/login", **kwargs):
    """POST a form the way a browser does: with the token of the session's pages."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client, page)}, **kwargs)


def login(client, email: str, password: str = PASSWORD):
    return post(client, "/admin/login", {"email": email, "password": password})


def signed_in(app, runtime, role: str, email: str | None = None):
    """A test client signed in as a new user with this role."""
    email = email or f"{role}@example.com"
    make_user(runtime, role, email)
    client = app.test_client()
    response = login(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client
