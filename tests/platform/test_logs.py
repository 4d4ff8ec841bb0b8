"""No customer data in log lines outside debug level, even when a statement fails."""
from __future__ import annotations

import io
import json
import logging

import pytest

from hub.platform.logs import RedactingFilter, redact
from hub.platform.runtime import setup_logging
from tests.support.whatsapp import PHONE_NUMBER_ID, envelope, make_channel, post_signed

NAME, PHONE, TEXT = "Zelda Quuxington", "15550199999", "my card number is secret-4711"


def body(wamid: str) -> bytes:
    return envelope({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": NAME}, "wa_id": PHONE}],
        "messages": [{"from": PHONE, "id": wamid, "timestamp": "1795000300", "type": "text",
                      "text": {"body": TEXT}}]})


@pytest.fixture
def captured(app, runtime):
    """The root logger's output as the hub sets it up, into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    setup_logging(runtime.config)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # log the failure as production does
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_a_failing_insert_logs_no_text_name_or_phone(app, client, runtime, captured, monkeypatch):
    from hub.channels.whatsapp.inbound import ingest

    key = make_channel(runtime)[1]
    assert post_signed(client, key, body("wamid.logs.1")).status_code == 200
    # As if a concurrent delivery of the same message had not been seen: the INSERT
    # fails on the unique key, the webhook answers 500 and the failure is logged.
    real = ingest.find_for_message
    monkeypatch.setattr(ingest, "find_for_message", lambda session, **kw: real(session, **kw)._replace(duplicate=False))
    assert post_signed(client, key, body("wamid.logs.1")).status_code == 500
    out = captured.getvalue()
    assert "IntegrityError" in out, out  # the failure itself is in the log ...
    for secret in (NAME, "Zelda", PHONE, "+" + PHONE, TEXT, "secret-4711"):
        assert secret not in out, f"{secret!r} leaked into the log:\n{out}"  # ... its data is not
    assert "parameters hidden" in out or "[parameters: redacted]" in out


def test_statement_parameters_are_hidden_by_the_engine(runtime):
    from sqlalchemy import text
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError) as caught:
        with runtime.db.scope() as session:
            session.execute(text("INSERT INTO contacts (id, wa_id) VALUES (:id, :wa_id)"),
                            [{"id": 1, "wa_id": PHONE}, {"id": 1, "wa_id": PHONE}])
    shown = str(caught.value)
    assert "SQL parameters hidden" in shown
    assert PHONE not in redact(shown)  # PostgreSQL's DETAIL quotes the row: redacted in logs


@pytest.mark.parametrize("line, leaked", [
    ("DETAIL:  Key (wa_id)=(15557654321) already exists.", "15557654321"),
    ("DETAIL:  Failing row contains (1, Ana Souza, +15557654321).", "Ana Souza"),
    ("[parameters: {'text': 'hello there', 'name': 'Ana'}]", "hello there"),
    ("contact +4915112345678 wrote", "4915112345678"),
    ("reply to ana.souza@example.com", "ana.souza@example.com"),
])
def test_redact(line, leaked):
    assert leaked not in redact(line)


def test_ids_and_counts_survive_redaction():
    line = "delivery 42 to amocrm is dead: HTTP 429 after 3 tries; connector 7, wamid.HBgL123"
    assert redact(line) == line


def test_the_filter_redacts_arguments_and_tracebacks():
    record = logging.LogRecord("hub", logging.ERROR, __file__, 1, "message from %s", (f"+{PHONE}",), None)
    try:
        raise ValueError(f"Failing row contains ({NAME})")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    shown = logging.Formatter().format(record)
    assert PHONE not in shown and NAME not in shown and "ValueError" in shown
