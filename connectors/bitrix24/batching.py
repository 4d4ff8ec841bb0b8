"""Packing dependent commands into as few `batch` requests as Bitrix24 allows.

A command may use another's result through a Ref. Once the other has answered, the
value is substituted; while both wait, an `inline` Ref lets them share one batch as
"$result[key][FIELD]". Only use inline refs where a failed target makes the dependent
fail too (a comment on a deal that was not created is refused for its ENTITY_ID):
Bitrix24 substitutes garbage rather than skipping the dependent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from connectors.bitrix24.client import MAX_BATCH, BatchResult
from connectors.bitrix24.errors import Bitrix24Error, CommandError


@dataclass(frozen=True)
class Ref:
    key: str
    path: tuple[str, ...] = ()
    inline: bool = False

    def macro(self) -> str:
        return "$result[" + "][".join((self.key, *self.path)) + "]"


@dataclass
class Call:
    key: str
    method: str
    params: dict[str, Any]
    owners: tuple[str, ...] = ()  # the events this command works for
    on_done: Callable[[Any], None] | None = None


def refs(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in refs(v)]
    return []


def _lookup(result: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(result, list) and part.isdigit() and int(part) < len(result):
            result = result[int(part)]
        elif isinstance(result, dict) and part in result:
            result = result[part]
        else:
            return None
    return result


def substitute(value: Any, done: dict[str, Any], placeholder: Callable[[Ref], Any] | None = None) -> Any:
    if isinstance(value, Ref):
        if value.key in done:
            return _lookup(done[value.key], value.path)
        return placeholder(value) if placeholder else value.macro()
    if isinstance(value, dict):
        return {k: substitute(v, done, placeholder) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, done, placeholder) for v in value]
    return value


@dataclass
class Run:
    """Outcome of executing calls: results and errors by key, requests made."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, CommandError] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    requests: int = 0


def next_batch(pending: list[Call], done: dict[str, Any], failed: dict[str, CommandError],
               limit: int = MAX_BATCH) -> tuple[list[Call], list[tuple[Call, CommandError]]]:
    """The calls that can go now (greedy, in order), and calls whose target failed."""
    chosen: list[Call] = []
    keys: set[str] = set()
    doomed: list[tuple[Call, CommandError]] = []
    for call in pending:
        deps = refs(call.params)
        bad = next((failed[d.key] for d in deps if d.key in failed), None)
        if bad is not None:
            doomed.append((call, bad))
            continue
        if len(chosen) >= limit:
            continue
        if all(d.key in done or (d.inline and d.key in keys) for d in deps):
            chosen.append(call)
            keys.add(call.key)
    return chosen, doomed


def plan(calls: list[Call], limit: int = MAX_BATCH) -> list[list[Call]]:
    """The batches `execute` would send if every call succeeded (for previews and floors)."""
    pending = list(calls)
    done: dict[str, Any] = {}
    batches: list[list[Call]] = []
    while pending:
        chosen, _ = next_batch(pending, done, {}, limit)
        if not chosen:
            raise ValueError("calls refer to keys that are not in the plan: "
                             + ", ".join(sorted({r.key for c in pending for r in refs(c.params)} - set(done))))
        batches.append(chosen)
        for call in chosen:
            done[call.key] = f"<{call.key}>"
        chosen_keys = {c.key for c in chosen}
        pending = [c for c in pending if c.key not in chosen_keys]
    return batches


def execute(client: Any, calls: Iterable[Call], *, limit: int = MAX_BATCH,
            on_answer: Callable[[], None] | None = None) -> Run:
    """Send the calls in batches; a request-level failure marks every unsent call.
    `on_answer` runs after the `on_done` callbacks of each answer, before the next
    request: where a caller stores what one answer created in one transaction."""
    run = Run()
    pending = list(calls)
    while pending:
        blocked = [c for c in pending if client.is_blocked(c.method)]
        for call in blocked:
            until = client.is_blocked(call.method)
            run.errors[call.key] = CommandError("OPERATION_TIME_LIMIT", f"{call.method} is blocked by the portal",
                                                "blocked", until)
        pending = [c for c in pending if c.key not in run.errors]
        chosen, doomed = next_batch(pending, run.results, run.errors, limit)
        for call, cause in doomed:
            run.errors[call.key] = cause
        if not chosen:
            for call in pending:
                run.errors.setdefault(call.key, CommandError("dependency", "an earlier command did not run", "transient"))
            break
        commands = [(c.key, c.method, substitute(c.params, run.results)) for c in chosen]
        try:
            answer: BatchResult = client.batch(commands)
            run.requests += 1
        except Bitrix24Error as exc:
            run.requests += 1
            err = CommandError.from_error(exc)
            for call in pending:
                run.errors.setdefault(call.key, err)
            break
        for call in chosen:
            if call.key in answer.errors:
                run.errors[call.key] = CommandError.from_error(answer.errors[call.key])
            elif call.key in answer.results:
                run.results[call.key] = answer.results[call.key]
                if call.key in answer.totals:
                    run.totals[call.key] = answer.totals[call.key]
                if call.on_done is not None:
                    call.on_done(answer.results[call.key])
            else:
                run.errors[call.key] = CommandError("ERROR_UNEXPECTED_ANSWER", "no result for this command", "transient")
        if on_answer is not None:
            on_answer()
        finished = {c.key for c in chosen} | set(run.errors)
        pending = [c for c in pending if c.key not in finished]
    return run
