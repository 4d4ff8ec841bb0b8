"""What Meta does to mailings, for the broadcast tests (spec §7 error codes, §8.3
messaging limits, §8.4 quality): all off unless a test switches them on.

- marketing_cap: marketing templates one user gets per rolling 24 h before Meta holds
  the rest back with 131049 (Meta's real cap is undisclosed: configurable here);
- experiment_users: users in Meta's marketing experiment group, held back with 130472;
- enforce_messaging_limit: unique users reached with templates outside the customer
  service window in a rolling 24 h across the portfolio, up to the number's tier; past
  it the send fails with 131048, as third parties report (spec §7, no dedicated code);
- block_rate: (fraction, minimum sends) per marketing template; recipients with
  `blocks=True` block the business; once blocks / sends of a template pass it, the
  template is PAUSED (message_template_status_update) and the number's quality drops
  one step (GREEN -> YELLOW -> RED, phone_number_quality_update).

These failures arrive as `failed` status webhooks after a 200, as Meta reports them.
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DAY = timedelta(hours=24)
DOWNGRADE = {"GREEN": "YELLOW", "YELLOW": "RED", "RED": "RED"}


def tier_limit(tier: str | None) -> int | None:
    if not tier or tier == "TIER_UNLIMITED":
        return None
    digits = tier.removeprefix("TIER_")
    return int(digits[:-1]) * 1000 if digits.endswith("K") else int(digits)


@dataclass
class CampaignRules:
    marketing_cap: int | None = None
    experiment_users: set[str] = field(default_factory=set)
    enforce_messaging_limit: bool = False
    block_rate: tuple[float, int] | None = None
    blockers: set[str] = field(default_factory=set)  # users who block the business
    _marketing: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    _reached: dict[str, datetime] = field(default_factory=dict)  # user -> last out-of-window template
    _template_sends: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _template_blocks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    paused_templates: set[str] = field(default_factory=set)

    def failure_code(self, *, user: str, category: str | None, csw_open: bool, tier: str | None,
                     now: datetime) -> int | None:
        """The code Meta would fail this template send with, or None (nothing is counted)."""
        if category == "MARKETING":
            if user in self.experiment_users:
                return 130472
            if self.marketing_cap is not None:
                sent = self._marketing[user]
                while sent and sent[0] <= now - DAY:
                    sent.popleft()
                if len(sent) >= self.marketing_cap:
                    return 131049
        if self.enforce_messaging_limit and not csw_open:
            limit = tier_limit(tier)
            for who, at in list(self._reached.items()):
                if at <= now - DAY:
                    del self._reached[who]
            if limit is not None and user not in self._reached and len(self._reached) >= limit:
                return 131048
        return None

    def record(self, *, user: str, template_id: str, category: str | None, csw_open: bool,
               now: datetime) -> bool:
        """Count a template send that went through; True when its template should pause."""
        if category == "MARKETING":
            self._marketing[user].append(now)
        if not csw_open:
            self._reached[user] = now
        if self.block_rate is None or category != "MARKETING" or template_id in self.paused_templates:
            return False
        self._template_sends[template_id] += 1
        if user in self.blockers:
            self._template_blocks[template_id] += 1
        fraction, minimum = self.block_rate
        sends = self._template_sends[template_id]
        if sends >= minimum and self._template_blocks[template_id] / sends > fraction:
            self.paused_templates.add(template_id)
            return True
        return False

    def counts(self) -> dict[str, Any]:
        return {"reached_24h": len(self._reached), "template_sends": dict(self._template_sends),
                "template_blocks": dict(self._template_blocks)}
