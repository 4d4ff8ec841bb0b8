"""One test per fixture in tests/fixtures/amocrm: real-shaped amoCRM bodies and hub events
through the pure mapping, parsing and client-side functions."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from connectors.amocrm import mapping, webhooks
from connectors.amocrm.client import validation_errors
from connectors.amocrm.settings import AmoCrmSettings
from connectors.base import InboundRequest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "amocrm"
CASES = sorted(FIXTURES.glob("*.json"))


def _request(body: str) -> InboundRequest:
    return InboundRequest(method="POST", url="https://hub.example/webhooks/connectors/k", path="/webhooks/connectors/k",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, query={},
                          body=body.encode(), form={})


def check(case: dict) -> None:
    kind = case["kind"]
    if kind == "lead_body":
        settings = AmoCrmSettings().load(case["settings"])
        got = mapping.lead_body(case["conversation"], case["contact"], settings, contact_id=case["contact_id"])
        assert got == case["expected"]
    elif kind == "note_body":
        got = mapping.note_body(case["lead_id"], case["message"], case["contact"], case["note_type"])
        assert got == case["expected"]
    elif kind == "complex_answer":
        got = {k: [v.lead_id, v.contact_id, v.merged] for k, v in mapping.complex_created(case["body"]).items()}
        assert got == case["expected"]
    elif kind == "validation_errors":
        assert validation_errors(case["body"]) == case["expected"]
    elif kind == "contact_search":
        got = [{"id": c["id"], "phones": mapping.phones(c), "leads": [x["id"] for x in mapping.embedded(c, "leads")],
                "view": mapping.contact_view(c)} for c in mapping.embedded(case["body"], "contacts")]
        assert got == case["expected"]["contacts"]
    elif kind == "lead_view":
        assert mapping.main_contact_id(case["body"]) == case["expected"]["main_contact_id"]
        assert mapping.lead_view(case["body"]) == case["expected"]["view"]
    elif kind == "webhook":
        parsed = webhooks.parse(_request(case["body"]))
        assert json.loads(json.dumps(dataclasses.asdict(parsed))) == case["expected"]
        # The same body arriving already parsed (flat keys as sent) reads the same.
        from urllib.parse import parse_qsl
        form = dict(parse_qsl(case["body"], keep_blank_values=True))
        again = webhooks.parse(dataclasses.replace(_request(""), form=form))
        assert again == parsed
    elif kind == "stage_lookup":
        pipelines = mapping.embedded(case["body"], "pipelines")
        for one in case["cases"]:
            got = mapping.automation_stage_patch(one["stage"], one["pipeline"], pipelines, one["default_pipeline_id"])
            assert got == one["expected"], one
    else:
        raise AssertionError(f"unknown fixture kind {kind!r}")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture(path: Path) -> None:
    check(json.loads(path.read_text()))


def test_every_fixture_kind_is_exercised() -> None:
    kinds = {json.loads(p.read_text())["kind"] for p in CASES}
    assert kinds == {"lead_body", "note_body", "complex_answer", "validation_errors", "contact_search",
                     "lead_view", "webhook", "stage_lookup"}
