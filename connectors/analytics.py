"""What the analytics destinations (ga4, meta_capi, metrica, roistat) share: goal rules,
the conversions an event asks for, once per (deal, goal), and SHA-256 of contact data
(WhatsApp contacts have phones, not e-mails: the phone is all there is to hash).

Pure apart from `Ledger`, which keeps the sent markers in the connector's link store.
A destination maps each Conversion to its own request body; the hub never learns which.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from marshmallow import ValidationError, fields, validate

from connectors.base import HubEvent, LinkStore

HANDLED = frozenset({"lead.attributed", "deal.stage_changed"})
SENT = "conversion"  # link entity type: one row per (deal, goal) sent

_GOAL = re.compile(
    r"^(?P<trigger>first_message|won|lost|stage:(?P<stage>[^\s=]+))\s*->\s*(?P<name>[A-Za-z0-9_.:-]{1,100})"
    r"\s*(?:=\s*(?P<value>amount|\d+(?:\.\d{1,2})?))?$"
)
GOAL_SYNTAX = ("One a line: TRIGGER -> GOAL [= amount | a fixed value]; TRIGGER is first_message, won, "
               "lost or stage:STAGE_ID (the CRM's stage id), e.g. 'won -> purchase = amount', "
               "'stage:C1:PREPARATION -> qualify_lead = 500'.")


class GoalError(ValueError):
    pass


@dataclass(frozen=True)
class Goal:
    trigger: str  # first_message | won | lost | stage
    name: str  # the destination's event name, goal id or status
    value: str = "amount"  # "amount" (the deal's) or a fixed decimal text
    stage: str | None = None

    def matches(self, event_type: str, deal: Mapping[str, Any] | None) -> bool:
        if self.trigger == "first_message":
            return event_type == "lead.attributed"
        if event_type != "deal.stage_changed" or not deal:
            return False
        if self.trigger == "stage":
            return str(deal.get("stage")) == self.stage
        return deal.get("outcome") == self.trigger


def parse_goals(lines: Iterable[str], *, name_pattern: re.Pattern[str] | None = None,
                name_rule: str = "") -> list[Goal]:
    """The goal rules, or GoalError naming the first bad line (1-based)."""
    goals = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _GOAL.match(line)
        if not m:
            raise GoalError(f"line {number}: {line!r} is not a goal rule. {GOAL_SYNTAX}")
        if name_pattern is not None and not name_pattern.match(m.group("name")):
            raise GoalError(f"line {number}: {m.group('name')!r} {name_rule}")
        trigger = "stage" if m.group("stage") else m.group("trigger")
        goals.append(Goal(trigger, m.group("name"), m.group("value") or "amount", m.group("stage")))
    return goals



def settings_goals(lines: Iterable[str], *, name_pattern: re.Pattern[str], name_rule: str) -> list[Goal]:
    """parse_goals for a destination's settings form: a bad line is the goals field's error."""
    try:
        return parse_goals(lines, name_pattern=name_pattern, name_rule=name_rule)
    except GoalError as exc:
        raise ValidationError(str(exc)) from None


def currency_field(default: str) -> fields.String:
    """A destination's currency for values when the deal names none (ISO 4217)."""
    return fields.String(
        load_default=default,
        validate=validate.Regexp(r"^[A-Z]{3}$", error=f"a three-letter ISO code, e.g. {default}"),
        metadata={"label": "Currency", "help": "ISO 4217 code for values when the deal names none."},
    )


def timeout_field(default: float = 10.0, most: float = 60) -> fields.Float:
    """How long a destination's answer may take before the send counts as failed and is retried."""
    return fields.Float(
        load_default=default, validate=validate.Range(min=1, max=most),
        metadata={"label": "Timeout (seconds)", "help": "A slower answer counts as a failure and is retried."},
    )

@dataclass(frozen=True)
class Conversion:
    """One goal reached by one deal (or one conversation, for first_message)."""

    key: str  # once per (deal, goal): the link store key
    goal: Goal
    event_id: str
    occurred_at: datetime
    conversation_id: int | None
    contact: Mapping[str, Any]
    lead_source: Mapping[str, Any] | None
    deal: Mapping[str, Any] | None
    value: Decimal | None
    currency: str | None

    @property
    def order_id(self) -> str:
        """A stable id of the conversion for APIs that deduplicate (transaction_id, event_id)."""
        if self.deal:
            return f"deal-{self.deal.get('crm_connector_id')}-{self.deal.get('id')}"
        return f"conversation-{self.conversation_id}"


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text)) if text not in (None, "") else None
    except InvalidOperation:
        return None


def _key(*parts: Any) -> str:
    key = ":".join(str(p) for p in parts)
    return key if len(key) <= 64 else "h:" + hashlib.sha256(key.encode()).hexdigest()[:62]


def conversions_for(event: HubEvent, goals: Iterable[Goal], default_currency: str) -> list[Conversion]:
    """The conversions an event reaches, in the order of the goal rules."""
    data = event.data or {}
    deal = data.get("deal") if event.type == "deal.stage_changed" else None
    if deal is not None:
        deal = {**deal, "crm_connector_id": (data.get("crm") or {}).get("connector_id")}
    conversation = data.get("conversation") or {}
    out = []
    for goal in goals:
        if not goal.matches(event.type, deal):
            continue
        if deal is not None:
            key = _key("deal", deal["crm_connector_id"], deal.get("id"), goal.name)
            value = _decimal(deal.get("amount")) if goal.value == "amount" else _decimal(goal.value)
            currency = deal.get("currency") or default_currency
        else:
            key = _key("lead", conversation.get("id"), goal.name)
            value = None if goal.value == "amount" else _decimal(goal.value)
            currency = default_currency
        out.append(Conversion(
            key=key, goal=goal, event_id=event.id, occurred_at=event.occurred_at,
            conversation_id=conversation.get("id"), contact=data.get("contact") or {},
            lead_source=data.get("lead_source") or conversation.get("lead_source"), deal=deal,
            value=value, currency=currency))
    return out


def sample_conversions(goals: list[Goal]) -> list[Conversion]:
    """One made-up conversion per goal (a won deal of 1.00), for Test connection."""
    deal = {"id": "test", "stage": "test", "outcome": "won", "amount": "1.00", "crm_connector_id": 0}
    return [Conversion(key=f"test:{g.name}", goal=g, event_id="test", occurred_at=datetime.now(timezone.utc),
                       conversation_id=0, contact={}, lead_source=None, deal=deal, value=Decimal("1.00"),
                       currency=None) for g in goals]


class Ledger:
    """Which (deal, goal) pairs this connector already sent, in its link store.

    Marked after the destination accepted; a worker killed between the two sends once
    more, with the same order_id, which each destination's own deduplication absorbs."""

    def __init__(self, links: LinkStore):
        self.links = links

    def unsent(self, conversions: list[Conversion]) -> list[Conversion]:
        if not conversions:
            return []
        sent = self.links.get_many(SENT, [c.key for c in conversions])
        return [c for c in conversions if c.key not in sent]

    def mark(self, conversions: list[Conversion]) -> None:
        if conversions:
            self.links.put_many(SENT, [(c.key, "sent", c.event_id[:64]) for c in conversions])


# -- privacy ------------------------------------------------------------------------------------------
def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def phone_digits(phone: str | None) -> str | None:
    """E.164 without '+' or separators (Meta's and Yandex's normal form), None if empty."""
    digits = re.sub(r"\D", "", phone or "")
    return digits or None


def opted_out(conversion: Conversion) -> bool:
    return bool(conversion.contact.get("opted_out"))


def unix(when: datetime) -> int:
    return int(when.astimezone(timezone.utc).timestamp())


# -- the delivery loop every destination shares ---------------------------------------------------------
class Skip(Exception):
    """Nothing can be sent for these conversions: the reason goes to the delivery log, no retry."""


class Malformed(Exception):
    """An id the destination would refuse (a malformed client id): dead at once, no retry storm."""


def classify(response: Any, service: str, now: datetime, secrets: list[str]) -> Any:
    """The destination's HTTP answer as an Outcome: 2xx done; 401/403 dead, saying the
    credentials were refused; 408/429/5xx retry (Retry-After honoured); other 4xx dead
    with the destination's own words."""
    from connectors.base import Outcome
    from hub.shared.http import describe_response, parse_retry_after

    described = describe_response(response, secrets)
    status = response.status_code
    if 200 <= status < 300:
        return Outcome.done(described)
    if status in (401, 403):
        return Outcome.dead(f"{service} refused the credentials (HTTP {status}): check the token in the "
                            f"connector's settings, then replay", response=described)
    if status in (408, 425, 429) or status >= 500:
        return Outcome.retry(f"{service} answered HTTP {status}",
                             retry_at=parse_retry_after(response.headers.get("Retry-After"), now), response=described)
    return Outcome.dead(f"{service} refused the conversion (HTTP {status}): {described['body'][:300]}",
                        response=described)


class Destination:
    """Mixin for analytics connectors: `deliver` turns each event into its conversions,
    leaves out what was sent before and what privacy forbids, and hands the rest to
    `send(conversions)` (one event's worth), marking them sent when it is done."""

    service: str = ""
    goal_name: re.Pattern[str] | None = None  # what the destination accepts as a goal's name

    def __init__(self, ctx: Any):
        super().__init__(ctx)  # type: ignore[call-arg]
        settings = self.settings  # type: ignore[attr-defined]
        self._goals = parse_goals(settings.get("goals") or [], name_pattern=self.goal_name)

    def goals(self) -> list[Goal]:
        """The goal rules of the connector's settings, read once."""
        return self._goals

    def send(self, conversions: list[Conversion]) -> Any:
        raise NotImplementedError

    def deliver(self, batch: list[HubEvent]) -> list[Any]:
        from connectors.base import Outcome

        ledger = Ledger(self.ctx.links)  # type: ignore[attr-defined]
        settings = self.settings  # type: ignore[attr-defined]
        outcomes = []
        for event in batch:
            conversions = conversions_for(event, self.goals(), settings.get("currency") or "USD")
            if not conversions:
                outcomes.append(Outcome.done({"skipped": f"no goal of this connector for {_describe(event)}"}))
                continue
            unsent = ledger.unsent(conversions)
            if not unsent:
                outcomes.append(Outcome.done({"skipped": "already sent: " + ", ".join(c.goal.name for c in conversions)
                                              + " (once per deal and goal)"}))
                continue
            if settings.get("skip_opted_out", True) and opted_out(unsent[0]):
                outcomes.append(Outcome.done({"skipped": "the contact opted out of marketing: nothing sent"}))
                continue
            try:
                outcome = self.send(unsent)
            except Skip as exc:
                outcomes.append(Outcome.done({"skipped": str(exc)}))
                continue
            except Malformed as exc:
                outcomes.append(Outcome.dead(str(exc)))
                continue
            if outcome.status == "done":
                ledger.mark(unsent)
                outcome = Outcome.done({**(outcome.response or {}), "sent": [c.goal.name for c in unsent]})
            outcomes.append(outcome)
        return outcomes


def _describe(event: HubEvent) -> str:
    deal = (event.data or {}).get("deal") if event.type == "deal.stage_changed" else None
    if deal:
        return f"deal {deal.get('id')} {deal.get('outcome')} at stage {deal.get('stage')}"
    return event.type
