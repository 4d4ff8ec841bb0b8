"""The scenario engine, pure: advance(definition, state, event, now, facts) -> Outcome.

It reads nothing and writes nothing: the runtime hands it the run's state, what just
happened (Start, Reply, Timeout, HttpResult) and what it may know of the contact, and
applies the actions it returns (send, store, tag, move the deal, hand off, call an
HTTP endpoint, close). A run stops at a step that waits for the customer (ask), the
clock (wait) or an HTTP answer; it never runs more than MAX_STEPS steps at once, so a
loop the publish check could not see still ends (as failed, "loop detected").
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.automations import answers, variables
from hub.routing import hours as team_hours

MAX_STEPS = 100


# -- what happened ------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    trigger: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    text: str = ""
    reply_id: str | None = None


@dataclass(frozen=True)
class Timeout:
    pass


@dataclass(frozen=True)
class HttpResult:
    ok: bool
    data: Any = None
    error: str = ""


# -- what the runtime does ----------------------------------------------------------
@dataclass(frozen=True)
class Send:
    kind: str  # text, image, video, audio, document, interactive, template
    content: dict[str, Any] | None = None
    template: dict[str, Any] | None = None  # {"name", "language", "body": [values]}


@dataclass(frozen=True)
class Store:
    target: str  # contact.<field>, conversation.<field>, deal.<field>
    value: Any


@dataclass(frozen=True)
class Tags:
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class DealStage:
    stage: str
    pipeline: str | None = None


@dataclass(frozen=True)
class Handoff:
    team_id: int | None = None
    user_id: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Http:
    url: str
    method: str
    body: dict[str, Any]
    timeout: float
    secret_env: str | None = None


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class Facts:
    """What the engine may know besides the run's state."""

    contact: dict[str, Any] = field(default_factory=dict)  # name, phone and the profile's fields
    tags: tuple[str, ...] = ()
    window_open: bool = True


@dataclass
class Outcome:
    state: dict[str, Any]
    status: str  # waiting, completed, handed_off, closed, stopped, failed
    actions: list[Any] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    wake_at: datetime | None = None
    reason: str | None = None


def new_state(trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"step": None, "waiting": None, "retries": 0, "reminded": False, "answers": {}, "http": {},
            "contact": {}, "conversation": {}, "deal": {}, "tags": None, "trigger": dict(trigger or {})}


class _Pass:
    """One advance: the state being changed, and what it produced."""

    def __init__(self, definition: dict[str, Any], state: dict[str, Any], now: datetime, facts: Facts):
        self.steps = {s["id"]: s for s in definition["steps"]}
        self.first = definition.get("start") or definition["steps"][0]["id"]
        self.state = state
        self.now = now
        self.facts = facts
        if state.get("tags") is None:
            state["tags"] = list(facts.tags)
        self.out = Outcome(state=state, status="waiting")

    # helpers --------------------------------------------------------------------
    def scope(self) -> dict[str, Any]:
        s = self.state
        return {"contact": {**self.facts.contact, **s["contact"]}, "conversation": s["conversation"],
                "deal": s["deal"], "answers": s["answers"], "http": s["http"], "trigger": s["trigger"],
                "tags": s["tags"]}

    def render(self, text: str | None) -> str:
        return variables.render(text or "", self.scope())

    def log(self, step: dict[str, Any] | None, what: str, **detail: Any) -> None:
        self.out.logs.append({"step": step["id"] if step else None, "kind": what, "detail": detail})

    def finish(self, status: str, reason: str | None = None) -> Outcome:
        self.state["waiting"] = None
        self.out.status, self.out.reason, self.out.wake_at = status, reason, None
        return self.out

    def wait(self, waiting: str, wake_at: datetime | None) -> Outcome:
        self.state["waiting"] = waiting
        self.state["wake_at"] = wake_at.isoformat() if wake_at else None
        self.out.status, self.out.wake_at = "waiting", wake_at
        return self.out

    def send(self, step: dict[str, Any], kind: str, content: dict[str, Any]) -> None:
        """Free-form when the window is open, else the step's template, else nothing."""
        if self.facts.window_open:
            self.out.actions.append(Send(kind, content))
            self.log(step, "sent", type=kind, text=_readable(kind, content))
            return
        template = step.get("template")
        if template:
            body = [self.render(v) for v in template.get("variables") or []]
            self.out.actions.append(Send("template", template={"name": template["name"],
                                                               "language": template["language"], "body": body}))
            self.log(step, "sent", type="template", template=template["name"], reason="window closed")
        else:
            self.log(step, "skipped", reason="the 24-hour window is closed and the step has no template")

    def store(self, step: dict[str, Any], target: str, value: Any) -> None:
        where, name = target.split(".", 1)
        self.state[where][name] = value
        self.out.actions.append(Store(target, value))
        self.log(step, "stored", target=target, value=value)

    # running --------------------------------------------------------------------
    def run_from(self, step_id: str | None) -> Outcome:
        for _ in range(MAX_STEPS):
            if step_id is None:
                self.state["step"] = None
                return self.finish("completed")
            step = self.steps.get(step_id)
            if step is None:
                return self.finish("failed", f"no step {step_id!r}")
            self.state["step"] = step_id
            self.state["retries"], self.state["reminded"] = 0, False
            result = getattr(self, f"_enter_{step['type']}")(step)
            if isinstance(result, Outcome):
                return result
            step_id = result
        return self.finish("failed", f"loop detected: more than {MAX_STEPS} steps without waiting")

    def _enter_text(self, step: dict[str, Any]) -> str | None:
        self.send(step, "text", {"body": self.render(step["text"])})
        return step.get("next")

    def _enter_media(self, step: dict[str, Any]) -> str | None:
        content: dict[str, Any] = {"link": self.render(step["link"])}
        if step.get("caption") and step["media_type"] != "audio":
            content["caption"] = self.render(step["caption"])
        self.send(step, step["media_type"], content)
        return step.get("next")

    def _enter_buttons(self, step: dict[str, Any]) -> str | None:
        self.send(step, "interactive", buttons(self.render(step["text"]), step["buttons"]))
        return step.get("next")

    def _enter_list(self, step: dict[str, Any]) -> str | None:
        self.send(step, "interactive", list_message(self.render(step["text"]), step["button"], step["rows"]))
        return step.get("next")

    def _enter_template(self, step: dict[str, Any]) -> str | None:
        template = step["template"]
        body = [self.render(v) for v in template.get("variables") or []]
        self.out.actions.append(Send("template", template={"name": template["name"],
                                                           "language": template["language"], "body": body}))
        self.log(step, "sent", type="template", template=template["name"])
        return step.get("next")

    def _ask(self, step: dict[str, Any], text: str) -> None:
        choices = step.get("choices") or []
        if step.get("validate_as") == "choice" and len(choices) <= 3:
            content, kind = buttons(text, [{"id": c["id"], "title": c["title"]} for c in choices]), "interactive"
        elif step.get("validate_as") == "choice":
            content, kind = list_message(text, "Choose", choices), "interactive"
        else:
            content, kind = {"body": text}, "text"
        self.send(step, kind, content)

    def _enter_ask(self, step: dict[str, Any]) -> Outcome:
        self._ask(step, self.render(step["text"]))
        self.state["asked_at"] = self.now.isoformat()
        return self.wait("reply", self._ask_deadline(step))

    def _ask_deadline(self, step: dict[str, Any]) -> datetime | None:
        if not self.state["reminded"] and step.get("remind_after_seconds"):
            return self.now + timedelta(seconds=step["remind_after_seconds"])
        if step.get("give_up_after_seconds"):
            return self.now + timedelta(seconds=step["give_up_after_seconds"])
        return None

    def _enter_branch(self, step: dict[str, Any]) -> str | None:
        scope = self.scope()
        for i, case in enumerate(step["cases"]):
            if all(holds(cond, scope, self.now) for cond in case["when"]):
                self.log(step, "branched", case=i, next=case["next"], why=[describe(c) for c in case["when"]])
                return case["next"]
        target = step.get("otherwise") or step.get("next")
        self.log(step, "branched", case=None, next=target, why="no case held")
        return target

    def _enter_wait(self, step: dict[str, Any]) -> Outcome:
        wake = self.now + timedelta(seconds=step["seconds"])
        self.log(step, "waiting", until=wake.isoformat(), on_reply=step["on_reply"])
        return self.wait("wait", wake)

    def _enter_set(self, step: dict[str, Any]) -> str | None:
        tags = self.state["tags"]
        add = [t for t in step["add_tags"] if t not in tags]
        remove = [t for t in step["remove_tags"] if t in tags]
        if add or remove:
            self.state["tags"] = [t for t in tags if t not in remove] + add
            self.out.actions.append(Tags(tuple(add), tuple(remove)))
            self.log(step, "tagged", added=add, removed=remove)
        for target, template in step["fields_"].items():
            self.store(step, target, self.render(template))
        return step.get("next")

    def _enter_deal_stage(self, step: dict[str, Any]) -> str | None:
        self.out.actions.append(DealStage(step["stage"], step.get("pipeline")))
        self.log(step, "deal_stage", stage=step["stage"], pipeline=step.get("pipeline"))
        return step.get("next")

    def _enter_handoff(self, step: dict[str, Any]) -> Outcome:
        self.out.actions.append(Handoff(step.get("team_id"), step.get("user_id"), self.render(step.get("note"))))
        self.log(step, "handed_off", team_id=step.get("team_id"), user_id=step.get("user_id"))
        return self.finish("handed_off")

    def _enter_http(self, step: dict[str, Any]) -> Outcome:
        body = {k: self.render(v) for k, v in step["body"].items()}
        self.out.actions.append(Http(self.render(step["url"]), step["method"], body, step["timeout_seconds"],
                                     step.get("secret_env")))
        self.log(step, "http", url=step["url"], method=step["method"])
        return self.wait("http", None)

    def _enter_close(self, step: dict[str, Any]) -> Outcome:
        if step.get("text"):
            self.send(step, "text", {"body": self.render(step["text"])})
        self.out.actions.append(Close())
        self.log(step, "closed")
        return self.finish("closed")

    # events while waiting ----------------------------------------------------------
    def reply(self, event: Reply) -> Outcome:
        step = self.steps.get(self.state.get("step") or "")
        waiting = self.state.get("waiting")
        if step is None or waiting not in ("reply", "wait"):
            return self.wait(waiting, _parse(self.state.get("wake_at"))) if waiting else self.finish("completed")
        if waiting == "wait":
            if step["on_reply"] == "stop":
                self.log(step, "stopped", reason="the customer replied")
                return self.finish("stopped", "the customer replied")
            if step["on_reply"] == "ignore":
                return self.wait("wait", _parse(self.state.get("wake_at")))
            self.log(step, "resumed", reason="the customer replied")
            return self.run_from(step.get("reply_next") or step.get("next"))
        value, why = answers.check(step, event.text, event.reply_id)
        if why is None:
            self.state["answers"][step.get("save_as") or step["id"]] = value
            self.log(step, "answered", value=value)
            if step.get("store"):
                self.store(step, step["store"], value)
            return self.run_from(step.get("next"))
        self.log(step, "invalid", answer=(event.text or "")[:200], reason=why)
        if self.state["retries"] >= step["retries"]:
            if step.get("on_fail"):
                return self.run_from(step["on_fail"])
            return self.finish("stopped", f"no valid answer at {step['id']}")
        self.state["retries"] += 1
        retry = self.render(step.get("retry_text")) or f"Sorry, that is {why}."
        self._ask(step, f"{retry}\n{self.render(step['text'])}")
        return self.wait("reply", _parse(self.state.get("wake_at")))

    def timeout(self) -> Outcome:
        waiting = self.state.get("waiting")
        if waiting == "start":
            return self.run_from(self.first)
        step = self.steps.get(self.state.get("step") or "")
        if step is None:
            return self.finish("failed", "the step it waited at is gone")
        if waiting == "wait":
            self.log(step, "waited")
            return self.run_from(step.get("next"))
        if waiting == "reply":
            if step.get("remind_after_seconds") and not self.state["reminded"]:
                self.state["reminded"] = True
                self._ask(step, self.render(step.get("remind_text")) or self.render(step["text"]))
                self.log(step, "reminded")
                return self.wait("reply", self._ask_deadline(step))
            self.log(step, "no_answer")
            if step.get("on_timeout"):
                return self.run_from(step["on_timeout"])
            return self.finish("stopped", f"no answer at {step['id']}")
        return self.wait(waiting, None) if waiting else self.finish("completed")

    def http_result(self, event: HttpResult) -> Outcome:
        step = self.steps.get(self.state.get("step") or "")
        if step is None or step["type"] != "http" or self.state.get("waiting") != "http":
            return self.finish("failed", "an HTTP answer arrived for no HTTP step")
        if event.ok:
            self.state["http"][step["save_as"]] = event.data
            self.log(step, "http_answer", saved_as=step["save_as"])
            return self.run_from(step.get("next"))
        self.log(step, "http_failed", error=event.error[:300])
        if step.get("on_error"):
            return self.run_from(step["on_error"])
        return self.finish("failed", f"HTTP call at {step['id']} failed: {event.error[:200]}")


def advance(definition: dict[str, Any], state: dict[str, Any] | None, event: Any, *, now: datetime,
            facts: Facts = Facts()) -> Outcome:
    """One step of a run (definition: definition.load's result). `state` is not changed:
    the outcome carries a new one."""
    run = _Pass(definition, copy.deepcopy(state) if state is not None else new_state(), now, facts)
    if isinstance(event, Start):
        run.state["trigger"] = dict(event.trigger)
        return run.run_from(run.first)
    if isinstance(event, Reply):
        return run.reply(event)
    if isinstance(event, Timeout):
        return run.timeout()
    if isinstance(event, HttpResult):
        return run.http_result(event)
    raise TypeError(f"unknown event {event!r}")


def delayed_start(trigger: dict[str, Any], wake_at: datetime) -> dict[str, Any]:
    """The state of a run that starts later (a CRM stage entered, with a delay)."""
    state = new_state(trigger)
    state["waiting"], state["wake_at"] = "start", wake_at.isoformat()
    return state


# -- pieces ---------------------------------------------------------------------------
def buttons(text: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "button", "body": {"text": text},
            "action": {"buttons": [{"type": "reply", "reply": {"id": b["id"], "title": b["title"]}} for b in items]}}


def list_message(text: str, button: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "list", "body": {"text": text}, "action": {"button": button, "sections": [{
        "title": button[:24], "rows": [{k: r[k] for k in ("id", "title", "description") if r.get(k)} for r in rows]}]}}


def _readable(kind: str, content: dict[str, Any]) -> str:
    if kind == "text":
        return content["body"]
    if kind == "interactive":
        return content["body"]["text"]
    return content.get("caption") or content.get("link", "")


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).replace(",", ".").replace(" ", ""))
    except (TypeError, ValueError):
        return None


def holds(cond: dict[str, Any], scope: dict[str, Any], now: datetime) -> bool:
    """Does one branch condition hold (pure)?"""
    if "tag" in cond:
        return (cond["tag"] in (scope.get("tags") or [])) == cond.get("has", True)
    if "hours" in cond:
        return team_hours.is_open(cond["hours"], cond.get("holidays") or [], cond.get("time_zone", "UTC"), now)
    actual = variables.lookup(cond["value_of"], scope)
    op, expected = cond.get("op", "eq"), cond.get("value")
    if op == "exists":
        return actual not in (None, "", [], {})
    if op == "missing":
        return actual in (None, "", [], {})
    if actual is None:
        return op == "ne"
    if op in ("gt", "gte", "lt", "lte"):
        a, b = _num(actual), _num(expected)
        if a is None or b is None:
            return False
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if op in ("eq", "ne"):
        a, b = _num(actual), _num(expected)
        same = a == b if a is not None and b is not None else answers.fold(str(actual)) == answers.fold(str(expected))
        return same if op == "eq" else not same
    if op == "contains":
        return answers.fold(str(expected)) in answers.fold(str(actual))
    if op == "in":
        return answers.fold(str(actual)) in {answers.fold(str(v)) for v in (expected or [])}
    if op == "matches":
        return re.search(str(expected), str(actual), re.IGNORECASE) is not None
    return False


def describe(cond: dict[str, Any]) -> str:
    if "tag" in cond:
        return f"tag {cond['tag']} {'present' if cond.get('has', True) else 'absent'}"
    if "hours" in cond:
        return f"within hours ({cond.get('time_zone', 'UTC')})"
    return f"{cond['value_of']} {cond.get('op', 'eq')} {cond.get('value')!r}"
