"""Roistat end-to-end analytics: each WhatsApp conversation of a Roistat visit becomes a
Roistat order (its roistat visit number, phone, the deal's status and price), so the
marketing team sees WhatsApp leads and revenue beside their ad spend.

The project API: https://cloud.roistat.com/api/v1/project/... ?project=N, Api-key header;
answers {"status": "success"} or {"status": "error", "error": code}; an order sent
again under its id is updated (which makes a resend harmless).
"""
from __future__ import annotations

from typing import Any

import requests

from connectors import analytics
from connectors.base import CheckResult, Connector, Outcome
from connectors.roistat import mapping
from connectors.roistat.settings import STATUS_ID, RoistatSettings, parse_statuses
from hub.shared.http import describe_response

AUTH_ERRORS = frozenset({"authentication_failed", "access_denied", "incorrect_api_key"})


class RoistatConnector(analytics.Destination, Connector):
    kind = "roistat"
    title = "Roistat (end-to-end analytics)"
    Settings = RoistatSettings
    handles = analytics.HANDLED
    service = "Roistat"
    goal_name = STATUS_ID

    def _post(self, method: str, body: Any) -> requests.Response:
        return self.ctx.http.post(f"{self.settings['api_url'].rstrip('/')}/project/{method}", json=body,
                                  params={"project": self.settings["project"]},
                                  headers={"Api-key": self.settings["api_key"]},
                                  timeout=self.settings.get("timeout_seconds", 10.0), allow_redirects=False)

    def _outcome(self, response: requests.Response) -> Outcome:
        secrets = [self.settings["api_key"]]
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) and body.get("status") == "error" else None
        if error is None:
            return analytics.classify(response, self.service, self.ctx.clock(), secrets)
        described = describe_response(response, secrets)
        if error in AUTH_ERRORS or response.status_code in (401, 403):
            return Outcome.dead(f"Roistat refused the API key ({error}): check it and the project number, then "
                                "replay", response=described)
        if response.status_code == 429 or response.status_code >= 500 or error == "request_limit_error":
            return Outcome.retry(f"Roistat asks to try later ({error})", response=described)
        return Outcome.dead(f"Roistat refused the order: {error} {body.get('message') or ''}".strip(),
                            response=described)

    def send(self, conversions: list[analytics.Conversion]) -> Outcome:
        body = mapping.orders(conversions, self.settings)[-1:]  # one order: the last status of the event wins
        try:
            response = self._post("add-orders", body)
        except requests.Timeout:
            return Outcome.retry("Roistat did not answer in time")
        except requests.RequestException as exc:
            return Outcome.retry(f"could not reach Roistat: {type(exc).__name__}")
        return self._outcome(response)

    def check(self) -> CheckResult:
        """Sends the status list (set-statuses): what Roistat needs to tell paid orders
        from the others, and a call that proves the key and project."""
        try:
            response = self._post("set-statuses", parse_statuses(self.settings.get("statuses") or []))
        except requests.RequestException as exc:
            return CheckResult(False, f"could not reach Roistat: {type(exc).__name__}")
        outcome = self._outcome(response)
        if outcome.status != "done":
            return CheckResult(False, outcome.error)
        return CheckResult(True, f"project {self.settings['project']} has the statuses "
                                 f"{', '.join(s['id'] for s in parse_statuses(self.settings.get('statuses') or []))}")

    def preview(self, batch: list[Any]) -> list[dict[str, Any]]:
        out = []
        for event in batch:
            conversions = analytics.conversions_for(event, self._goals, "RUB")
            if conversions:
                try:
                    out.append({"method": "POST", "path": "/project/add-orders",
                                "body": mapping.orders(conversions, self.settings)[-1:]})
                except (analytics.Skip, analytics.Malformed) as exc:
                    out.append({"method": "-", "path": "/project/add-orders", "body": {"skipped": str(exc)}})
        return out
