"""What publishing needs beyond the schema: every step it can reach exists, ids are
unique, no cycle can run without waiting for the customer or the clock, and every
{{variable}} can have a value. Pure; problems are "path: message" like definition's."""
from __future__ import annotations

from typing import Any, Iterator

from hub.automations import variables
from hub.automations.definition import BLOCKING, DefinitionError, load, step_path


def targets(step: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, step id) of every step this one can go to."""
    for key in ("next", "on_fail", "on_timeout", "reply_next", "on_error"):
        if step.get(key):
            yield key, step[key]
    if step.get("otherwise"):
        yield "else", step["otherwise"]
    for i, case in enumerate(step.get("cases") or []):
        yield f"cases[{i}].next", case["next"]


def _texts(step: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in ("text", "retry_text", "remind_text", "caption", "link", "url"):
        if step.get(key):
            yield key, step[key]
    template = step.get("template")
    if template:
        for i, value in enumerate(template.get("variables") or []):
            yield f"template.variables[{i}]", value
    for key, value in (step.get("fields_") or {}).items():
        yield f"fields.{key}", value
    for key, value in (step.get("body") or {}).items():
        yield f"body.{key}", value


def _cycle_without_wait(steps: dict[str, dict[str, Any]]) -> list[str] | None:
    """A cycle among steps that neither ask nor wait (so it would spin), as step ids."""
    graph = {sid: [t for _, t in targets(s) if t in steps and steps[t]["type"] not in BLOCKING]
             for sid, s in steps.items() if s["type"] not in BLOCKING}
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        colour[node] = 2
        stack.pop()
        return None

    for node in graph:
        if colour.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def problems(definition: dict[str, Any]) -> list[str]:
    """Publishing problems of a loaded definition (definition.load's result)."""
    out: list[str] = []
    steps = definition["steps"]
    by_id: dict[str, dict[str, Any]] = {}
    for i, step in enumerate(steps):
        if step["id"] in by_id:
            out.append(f"{step_path(i, step)}.id: {step['id']!r} is used by another step")
        by_id.setdefault(step["id"], step)
    if definition.get("start") and definition["start"] not in by_id:
        out.append(f"start: no step {definition['start']!r}")
    answers = {s["save_as"] for s in steps if s["type"] == "ask" and s.get("save_as")}
    http = {s["save_as"] for s in steps if s["type"] == "http"}
    for i, step in enumerate(steps):
        path = step_path(i, step)
        for field, target in targets(step):
            if target not in by_id:
                out.append(f"{path}.{field}: no step {target!r}")
        for field, text in _texts(step):
            for name in variables.names(text):
                why = variables.problem(name, answers=answers, http=http)
                if why:
                    out.append(f"{path}.{field}: {why}")
        for c, case in enumerate(step.get("cases") or []):
            for w, cond in enumerate(case["when"]):
                name = cond.get("value_of")
                why = name and variables.problem(name, answers=answers, http=http)
                if why:
                    out.append(f"{path}.cases[{c}].when[{w}].value_of: {why}")
    cycle = _cycle_without_wait(by_id)
    if cycle:
        first = next(i for i, s in enumerate(steps) if s["id"] == cycle[0])
        out.append(f"{step_path(first, steps[first])}: endless loop {' -> '.join(cycle)} "
                   "(a cycle needs an ask or a wait step)")
    return out


def publishable(document: Any) -> dict[str, Any]:
    """The loaded definition when it may be published; raises DefinitionError naming
    every problem."""
    definition = load(document)
    found = problems(definition)
    if found:
        raise DefinitionError(found)
    return definition
