"""The scenario editor's step and trigger forms: every step type added, edited, moved and
deleted through forms into the same draft the JSON editor edits; a bad form answers 422
with the problems named by the step's path and saves nothing; a form made from an older
draft is refused; admins only."""
import html as h
import re

import pytest
from sqlalchemy import select

from hub.models import Scenario
from hub.web.admin import automation_forms as forms
from tests.support.admin import post, signed_in


def _draft(runtime, sid):
    with runtime.db.scope() as s:
        return s.get(Scenario, sid).draft


def _new(admin, runtime, example="lead_qualification"):
    post(admin, "/admin/automations/new", {"example": example}, page="/admin/automations")
    with runtime.db.scope() as s:
        return s.scalars(select(Scenario.id).order_by(Scenario.id.desc())).first()


def _form(html: str) -> dict:
    """The fields of the page's step (or trigger) form as a browser would post them."""
    body = html[html.index('method="post"', html.index("<form", html.index('class="card"', html.index("</form>")))):]
    body = body[:body.index("</form>")]
    data = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', body):
        data[name] = h.unescape(value)
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', body, re.S):
        data[name] = h.unescape(value)
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(r'<option value="([^"]*)"', options)
        data[name] = h.unescape(chosen.group(1)) if chosen else ""
    return data


STEPS = {
    "text": ({"text": "Hi {{contact.name}}", "template-name": "hello", "template-language": "en",
              "template-variables": "{{contact.name}}"},
             {"text": "Hi {{contact.name}}", "template": {"name": "hello", "language": "en",
                                                          "variables": ["{{contact.name}}"]}}),
    "media": ({"media_type": "image", "link": "https://cdn.example.com/a.jpg", "caption": "Our shop"},
              {"media_type": "image", "link": "https://cdn.example.com/a.jpg", "caption": "Our shop"}),
    "buttons": ({"text": "Pick", "buttons-rows": "2", "buttons-0-0": "yes", "buttons-0-1": "Yes",
                 "buttons-1-0": "no", "buttons-1-1": "No"},
                {"text": "Pick", "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]}),
    "list": ({"text": "Choose", "button": "Open", "rows-rows": "1", "rows-0-0": "a", "rows-0-1": "Alpha",
              "rows-0-2": "first"},
             {"text": "Choose", "button": "Open", "rows": [{"id": "a", "title": "Alpha", "description": "first"}]}),
    "template": ({"template-name": "order_ready", "template-language": "ru", "template-variables": ""},
                 {"template": {"name": "order_ready", "language": "ru", "variables": []}}),
    "ask": ({"text": "Your city?", "validate": "choice", "choices-rows": "1", "choices-0-0": "msk",
             "choices-0-1": "Moscow", "choices-0-2": "мск, moscow", "save_as": "city", "store": "contact.city",
             "retries": "1", "retry_text": "Pick one, please.", "on_fail": "handoff"},
            {"text": "Your city?", "validate": "choice", "choices": [{"id": "msk", "title": "Moscow",
                                                                     "synonyms": ["мск", "moscow"]}],
             "save_as": "city", "store": "contact.city", "retries": 1, "retry_text": "Pick one, please.",
             "on_fail": "handoff"}),
    "branch": ({"cases-rows": "3", "cases-0-0": "1", "cases-0-1": "thanks", "cases-0-2": "answers.budget",
                "cases-0-3": "gte", "cases-0-4": "1000", "cases-1-0": "1", "cases-1-5": "vip", "cases-1-6": "no",
                "cases-2-0": "2", "cases-2-1": "handoff", "cases-2-2": "answers.need", "cases-2-3": "in",
                "cases-2-4": "buy, rent", "else": "hello"},
               {"cases": [{"next": "thanks", "when": [{"value_of": "answers.budget", "op": "gte", "value": 1000},
                                                      {"tag": "vip", "has": False}]},
                          {"next": "handoff", "when": [{"value_of": "answers.need", "op": "in",
                                                        "value": ["buy", "rent"]}]}],
                "else": "hello"}),
    "wait": ({"seconds": "3600", "on_reply": "resume", "reply_next": "thanks"},
             {"seconds": 3600, "on_reply": "resume", "reply_next": "thanks"}),
    "set": ({"add_tags": "vip\nlead", "remove_tags": "", "fields": "contact.city = {{answers.name}}\ndeal.source = bot"},
            {"add_tags": ["vip", "lead"], "fields": {"contact.city": "{{answers.name}}", "deal.source": "bot"}}),
    "deal_stage": ({"stage": "Won", "pipeline": "Sales"}, {"stage": "Won", "pipeline": "Sales"}),
    "handoff": ({"team_id": "3", "note": "a hot lead"}, {"team_id": 3, "note": "a hot lead"}),
    "http": ({"url": "https://crm.example.com/hook", "method": "POST", "body": "name = {{answers.name}}",
              "secret_env": "HOOK_SECRET", "timeout_seconds": "2,5", "save_as": "crm", "on_error": "handoff"},
             {"url": "https://crm.example.com/hook", "method": "POST", "body": {"name": "{{answers.name}}"},
              "secret_env": "HOOK_SECRET", "timeout_seconds": 2.5, "save_as": "crm", "on_error": "handoff"}),
    "close": ({"text": "Bye"}, {"text": "Bye"}),
}


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_a_step_of_each_type_added_edited_and_deleted_through_forms(app, runtime, kind):
    admin = signed_in(app, runtime, "admin")
    sid = _new(admin, runtime)
    base = f"/admin/automations/{sid}"
    before = _draft(runtime, sid)
    page = admin.get(f"{base}/steps/new?type={kind}&at=1")
    assert page.status_code == 200
    data = {**_form(page.get_data(as_text=True)), "id": f"new_{kind}", **STEPS[kind][0]}
    r = post(admin, f"{base}/steps/save", data, page=base)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    after = _draft(runtime, sid)
    assert after["steps"][1] == {"id": f"new_{kind}", "type": kind, **STEPS[kind][1]}
    assert after["steps"][:1] + after["steps"][2:] == before["steps"]

    # the edit form shows what was saved; posting it back unchanged changes nothing
    page = admin.get(f"{base}/steps/1").get_data(as_text=True)
    r = post(admin, f"{base}/steps/save", _form(page), page=base)
    assert r.status_code == 303 and _draft(runtime, sid) == after

    rev = forms.revision(after)
    assert post(admin, f"{base}/steps/1/delete", {"revision": rev}, page=base).status_code == 303
    assert _draft(runtime, sid) == before


def test_bad_forms_name_the_step_and_field_and_save_nothing(app, runtime):
    admin = signed_in(app, runtime, "admin")
    sid = _new(admin, runtime)
    base = f"/admin/automations/{sid}"
    before = _draft(runtime, sid)
    form = _form(admin.get(f"{base}/steps/3").get_data(as_text=True))  # budget: an ask step
    assert form["id"] == "budget" and form["validate"] == "number" and form["min"] == "0"
    for change, expected in [({"retries": "many"}, "steps[3] (budget).retries: 'many' is not a whole number"),
                             ({"retries": "9"}, "steps[3] (budget).retries: Must be greater than or equal to 0"),
                             ({"next": "nowhere"}, "steps[3] (budget).next: no step 'nowhere'"),
                             ({"id": "name"}, "steps[3] (name).id: 'name' is used by another step"),
                             ({"text": ""}, "steps[3] (budget).text: Missing data for required field.")]:
        r = post(admin, f"{base}/steps/save", {**form, **change}, page=base)
        assert r.status_code == 422 and expected in h.unescape(r.get_data(as_text=True)), change
    r = post(admin, f"{base}/steps/save", {**form, "type": "buttons", "text": "Pick", "buttons-rows": "1",
                                          "buttons-0-0": "a", "buttons-0-1": "A title far longer than twenty"},
             page=base)
    assert r.status_code == 422 and "steps[3] (budget).buttons[0].title: Length must be between 1 and 20." in \
        r.get_data(as_text=True)
    assert _draft(runtime, sid) == before

    # a form made from an older draft: refused, the newer draft kept
    post(admin, f"{base}/steps/save", {**form, "retry_text": "Digits, please."}, page=base)
    newer = _draft(runtime, sid)
    assert newer["steps"][3]["retry_text"] == "Digits, please."
    r = post(admin, f"{base}/steps/save", {**form, "retry_text": "lost"}, page=base)
    assert r.status_code == 409 and "Digits, please." in r.get_data(as_text=True)
    assert "The draft changed since this form was opened" in r.get_data(as_text=True)
    assert _draft(runtime, sid) == newer
    r = post(admin, f"{base}/steps/1/delete", {"revision": form["revision"]}, page=base)
    assert r.status_code == 409 and _draft(runtime, sid) == newer
    rev = forms.revision(newer)
    r = post(admin, f"{base}/steps/1/move", {"direction": "sideways", "revision": rev}, page=base)
    assert r.status_code == 400 and _draft(runtime, sid) == newer
    r = post(admin, f"{base}/steps/99/delete", {"revision": rev}, page=base)
    assert r.status_code == 404 and _draft(runtime, sid) == newer
    r = post(admin, f"{base}/steps/save", {**form, "type": "teleport", "revision": rev}, page=base)
    assert r.status_code == 404 and _draft(runtime, sid) == newer


def test_reorder_the_trigger_and_roles(app, runtime):
    admin = signed_in(app, runtime, "admin")
    sid = _new(admin, runtime)
    base = f"/admin/automations/{sid}"
    ids = [s["id"] for s in _draft(runtime, sid)["steps"]]
    rev = forms.revision(_draft(runtime, sid))
    assert post(admin, f"{base}/steps/0/move", {"direction": "down", "revision": rev}, page=base).status_code == 303
    assert [s["id"] for s in _draft(runtime, sid)["steps"]] == [ids[1], ids[0], *ids[2:]]
    rev = forms.revision(_draft(runtime, sid))
    assert post(admin, f"{base}/steps/0/move", {"direction": "up", "revision": rev}, page=base).status_code == 404
    assert post(admin, f"{base}/steps/1/move", {"direction": "up", "revision": rev}, page=base).status_code == 303
    assert [s["id"] for s in _draft(runtime, sid)["steps"]] == ids

    page = admin.get(f"{base}/trigger?type=keyword").get_data(as_text=True)
    data = {**_form(page), "match": "contains", "keywords": "price\ncost", "synonyms": "цена"}
    assert post(admin, f"{base}/trigger", data, page=base).status_code == 303
    assert _draft(runtime, sid)["trigger"] == {"type": "keyword", "match": "contains", "keywords": ["price", "cost"],
                                               "synonyms": ["цена"]}
    page = admin.get(f"{base}/trigger").get_data(as_text=True)
    r = post(admin, f"{base}/trigger", {**_form(page), "keywords": ""}, page=base)
    assert r.status_code == 422 and "trigger.keywords: a keyword trigger needs keywords" in r.get_data(as_text=True)
    page = admin.get(f"{base}/trigger?type=no_reply").get_data(as_text=True)
    r = post(admin, f"{base}/trigger", {**_form(page), "hours": "soon"}, page=base)
    assert r.status_code == 422 and "trigger.hours: 'soon' is not a number" in h.unescape(r.get_data(as_text=True))
    assert post(admin, f"{base}/trigger", {**_form(page), "hours": "23"}, page=base).status_code == 303
    assert _draft(runtime, sid)["trigger"] == {"type": "no_reply", "hours": 23}

    # the JSON editor refuses a text made from an older draft too
    r = post(admin, base, {"document": "{}", "revision": rev}, page=base)
    assert r.status_code == 409 and _draft(runtime, sid)["trigger"]["type"] == "no_reply"

    viewer = signed_in(app, runtime, "viewer")
    assert viewer.get(f"{base}/steps/0").status_code == 403
    assert viewer.get(f"{base}/trigger").status_code == 403
    rev = forms.revision(_draft(runtime, sid))
    assert post(viewer, f"{base}/steps/0/delete", {"revision": rev}, page=base).status_code == 403
    assert "Edit the trigger" not in viewer.get(base).get_data(as_text=True)


def _as_posted(values) -> dict:
    """What a browser posts for the fields as the form shows them (blank rows included)."""
    data = {}
    for f in values:
        if f.spec.kind == "table":
            rows = f.value + [[""] * len(f.spec.columns)] * forms.BLANK_ROWS
            data[f"{f.spec.name}-rows"] = str(len(rows))
            for r, row in enumerate(rows):
                for c, col in enumerate(f.spec.columns):
                    data[f"{f.spec.name}-{r}-{c}"] = row[c] or (col.choices[0] if col.kind == "select" else "")
        elif f.spec.kind == "template":
            data.update({f"template-{k}": v for k, v in f.value.items()})
        else:
            data[f.spec.name] = f.value
    return data


def test_every_example_step_goes_through_its_form_unchanged():
    from hub.automations import examples

    seen = set()
    for name in examples.names():
        document = examples.load(name)
        document = document.get("scenario", document)
        for i, step in enumerate(document["steps"]):
            values = forms.shown(forms.STEP_FIELDS[step["type"]], step)
            assert forms.build_step(step["type"], {"id": step["id"], **_as_posted(values)}, step, i) == step, (name, i)
            seen.add(step["type"])
        trigger = document["trigger"]
        values = forms.shown(forms.TRIGGER_FIELDS[trigger["type"]], trigger)
        assert forms.build_trigger(trigger["type"], _as_posted(values)) == trigger, name
    assert {"text", "ask", "branch", "handoff"} <= seen


def test_a_branch_keeps_its_working_hours_conditions():
    step = {"id": "when", "type": "branch", "else": "later",
            "cases": [{"next": "now", "when": [{"hours": {"mon": [["09:00", "18:00"]]}, "time_zone": "Europe/Moscow"},
                                               {"tag": "vip", "has": True}]}]}
    values = forms.shown(forms.STEP_FIELDS["branch"], step)
    assert values[0].value == [["1", "now", "", "", "", "vip", "yes"]]
    posted = {"id": "when", **_as_posted(values), "cases-0-5": "gold"}
    assert forms.build_step("branch", posted, step, 0)["cases"] == [
        {"next": "now", "when": [{"tag": "gold", "has": True},
                                 {"hours": {"mon": [["09:00", "18:00"]]}, "time_zone": "Europe/Moscow"}]}]
