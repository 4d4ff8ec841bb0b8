"""Google Analytics 4 Measurement Protocol: first WhatsApp messages and deal outcomes as
GA4 events of the visitor's own client id (the _ga cookie kept by the tracked link).

/mp/collect answers 2xx to everything, valid or not, and never checks the api_secret
in the answer (a wrong one silently drops the events), so bodies are checked here before
they go and Test connection asks the validation server (/debug/mp/collect).
"""
from __future__ import annotations

from typing import Any

import requests

from connectors import analytics
from connectors.base import CheckResult, Connector, Outcome
from connectors.ga4 import mapping
from connectors.ga4.settings import EVENT_NAME, Ga4Settings


class Ga4Connector(analytics.Destination, Connector):
    kind = "ga4"
    title = "Google Analytics 4 (Measurement Protocol)"
    Settings = Ga4Settings
    handles = analytics.HANDLED
    service = "GA4"
    goal_name = EVENT_NAME

    def _url(self, path: str) -> str:
        return self.settings["endpoint"].rstrip("/") + path

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.ctx.http.post(self._url(path), json=body, timeout=self.settings.get("timeout_seconds", 10.0),
                                  params={"measurement_id": self.settings["measurement_id"],
                                          "api_secret": self.settings["api_secret"]}, allow_redirects=False)

    def send(self, conversions: list[analytics.Conversion]) -> Outcome:
        body = mapping.body(conversions, mapping.client_id_of(conversions[0]), self.settings, self.ctx.clock())
        try:
            response = self._post("/mp/collect", body)
        except requests.Timeout:
            return Outcome.retry("GA4 did not answer in time")
        except requests.RequestException as exc:
            return Outcome.retry(f"could not reach GA4: {type(exc).__name__}")
        return analytics.classify(response, self.service, self.ctx.clock(), [self.settings["api_secret"]])

    def check(self) -> CheckResult:
        if not self._goals:
            return CheckResult(False, "no goals: add at least one line such as 'won -> close_convert_lead = amount'")
        sample = mapping.body(analytics.sample_conversions(self._goals), "1234567890.1700000000", self.settings)
        try:
            response = self._post("/debug/mp/collect", sample)
        except requests.RequestException as exc:
            return CheckResult(False, f"could not reach {self.settings['endpoint']}: {type(exc).__name__}")
        if response.status_code != 200:
            return CheckResult(False, f"the validation server answered HTTP {response.status_code}")
        try:
            messages = response.json().get("validationMessages") or []
        except ValueError:
            return CheckResult(False, "the validation server did not answer JSON")
        if messages:
            return CheckResult(False, "GA4 would refuse the events: " + "; ".join(
                str(m.get("description")) for m in messages), {"validationMessages": messages})
        return CheckResult(True, f"GA4 accepts the events for {self.settings['measurement_id']} (the API secret "
                                 "itself is only checked when events arrive: see Realtime in GA4)")

    def preview(self, batch: list[Any]) -> list[dict[str, Any]]:
        out = []
        for event in batch:
            conversions = analytics.conversions_for(event, self._goals, self.settings.get("currency") or "USD")
            if not conversions:
                continue
            try:
                body = mapping.body(conversions, mapping.client_id_of(conversions[0]), self.settings)
            except (analytics.Skip, analytics.Malformed) as exc:
                out.append({"method": "-", "path": "/mp/collect", "body": {"skipped": str(exc)}})
                continue
            out.append({"method": "POST", "path": "/mp/collect", "body": body})
        return out
