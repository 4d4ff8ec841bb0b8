"""Scenario documents: the schema's errors and the publish checks name the bad part."""
import pytest

from hub.automations.checks import publishable
from hub.automations.definition import DefinitionError, load


def doc(*steps, trigger=None, **extra):
    return {"name": "t", "trigger": trigger or {"type": "manual"}, "steps": list(steps), **extra}


def refused(document):
    with pytest.raises(DefinitionError) as caught:
        publishable(document)
    return caught.value.problems


def test_a_valid_document_loads_with_defaults():
    d = load(doc({"id": "q", "type": "ask", "text": "Budget?", "validate": "number", "save_as": "budget"}))
    assert d["steps"][0]["retries"] == 2 and d["steps"][0]["validate_as"] == "number"
    assert d["cooldown_minutes"] == 0


def test_unknown_step_type_is_named_with_its_path():
    assert refused(doc({"id": "a", "type": "text", "text": "hi"}, {"id": "b", "type": "teleport"})) == [
        "steps[1] (b).type: unknown step type 'teleport' (one of ask, branch, buttons, close, deal_stage, "
        "handoff, http, list, media, set, template, text, wait)"]


def test_branch_to_a_missing_step():
    problems = refused(doc({"id": "b", "type": "branch", "cases": [{"when": [{"tag": "vip"}], "next": "gone"}],
                            "else": "also_gone"}))
    assert sorted(problems) == ["steps[0] (b).cases[0].next: no step 'gone'", "steps[0] (b).else: no step 'also_gone'"]


def test_wrong_variables_in_texts_and_templates():
    problems = refused(doc(
        {"id": "a", "type": "text", "text": "Hi {{contact.name}}, {{answers.budget}}", "next": "t"},
        {"id": "t", "type": "template", "template": {"name": "x", "language": "en", "variables": ["{{weather.today}}"]}}))
    assert problems == [
        "steps[0] (a).text: {{answers.budget}}: no ask step saves an answer as 'budget'",
        "steps[1] (t).template.variables[0]: {{weather.today}}: unknown variable (one of contact.…, "
        "conversation.…, deal.…, answers.…, http.…, trigger.…, tags.…)"]


def test_an_endless_loop_is_refused_but_a_loop_through_an_ask_is_not():
    loop = doc({"id": "a", "type": "text", "text": "x", "next": "b"}, {"id": "b", "type": "set", "next": "a"})
    assert refused(loop) == ["steps[0] (a): endless loop a -> b -> a (a cycle needs an ask or a wait step)"]
    publishable(doc({"id": "a", "type": "ask", "text": "x?", "next": "b"}, {"id": "b", "type": "text", "text": "y",
                                                                             "next": "a"}))


def test_limits_of_buttons_and_lists():
    many = [{"id": str(i), "title": f"b{i}"} for i in range(4)]
    rows = [{"id": str(i), "title": f"r{i}"} for i in range(11)]
    problems = refused(doc({"id": "b", "type": "buttons", "text": "pick", "buttons": many},
                           {"id": "l", "type": "list", "text": "pick", "rows": rows}))
    assert problems == ["steps[0] (b).buttons: 1 to 3 buttons", "steps[1] (l).rows: 1 to 10 rows"]


def test_field_errors_name_the_step_and_field():
    problems = refused(doc({"id": "q", "type": "ask", "text": "x", "store": "crm.x"},
                           {"id": "c", "type": "ask", "text": "x", "validate": "choice"},
                           trigger={"type": "keyword", "match": "regex", "keywords": ["(unclosed"]}))
    assert "trigger.keywords: keywords[0] is not a regular expression: missing ), unterminated subpattern at " \
           "position 0" in problems
    assert "steps[0] (q).store: store into contact.<field>, conversation.<field> or deal.<field>" in problems
    assert "steps[1] (c).choices: validate: choice needs choices" in problems


def test_duplicate_ids_and_not_an_object():
    assert refused(doc({"id": "a", "type": "close"}, {"id": "a", "type": "close"})) == [
        "steps[1] (a).id: 'a' is used by another step"]
    assert refused([1, 2]) == ["document: expected a JSON object"]
