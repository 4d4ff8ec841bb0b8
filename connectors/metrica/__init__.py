"""Yandex Metrica offline conversions: the WhatsApp chat and the deal's outcome as goals
of the visitor (ClientID from _ym_uid, or the Direct click's yclid) the tracked link saw.

Uploads are CSV files (multipart `file`) with `Authorization: OAuth <token>`; Metrica
keeps no ids of its own to deduplicate, so each upload's comment names its conversions
and a retry (attempt > 1) looks for it among the counter's uploads before sending again.
Errors come as {"errors": [{"error_type", "message"}], "code", "message"}.
"""
from __future__ import annotations

from typing import Any

import requests

from connectors import analytics
from connectors.base import CheckResult, Connector, ConnectorContext, HubEvent, Outcome
from connectors.metrica import mapping
from connectors.metrica.settings import GOAL_ID, MetricaSettings


class MetricaConnector(analytics.Destination, Connector):
    kind = "metrica"
    title = "Yandex Metrica (offline conversions)"
    Settings = MetricaSettings
    handles = analytics.HANDLED
    service = "Metrica"
    goal_name = GOAL_ID

    def __init__(self, ctx: ConnectorContext):
        super().__init__(ctx)
        self._attempt = 1

    def _counter_url(self, path: str) -> str:
        return f"{self.settings['api_url'].rstrip('/')}/management/v1/counter/{self.settings['counter_id']}{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"OAuth {self.settings['oauth_token']}"}

    def _timeout(self) -> float:
        return self.settings.get("timeout_seconds", 20.0)

    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        outcomes = []
        for event in batch:  # one at a time: send() needs to know whether this is a retry
            self._attempt = event.attempt
            outcomes += super().deliver([event])
        return outcomes

    def _already_uploaded(self, note: str) -> bool:
        response = self.ctx.http.get(self._counter_url("/offline_conversions/uploadings"), headers=self._headers(),
                                     timeout=self._timeout())
        if response.status_code != 200:
            return False
        return any(u.get("comment") == note for u in (response.json() or {}).get("uploadings") or [])

    def send(self, conversions: list[analytics.Conversion]) -> Outcome:
        body = mapping.csv_file(conversions, self.settings)
        note = mapping.comment(conversions)
        try:
            if self._attempt > 1 and self._already_uploaded(note):
                return Outcome.done({"found": f"an earlier try uploaded it ({note})"})
            response = self.ctx.http.post(
                self._counter_url("/offline_conversions/upload"), headers=self._headers(), timeout=self._timeout(),
                params={"comment": note, "type": mapping.upload_type(conversions, self.settings)},
                files={"file": ("conversions.csv", body.encode(), "text/csv")}, allow_redirects=False)
        except requests.Timeout:
            return Outcome.retry("Metrica did not answer in time")
        except requests.RequestException as exc:
            return Outcome.retry(f"could not reach Metrica: {type(exc).__name__}")
        outcome = analytics.classify(response, self.service, self.ctx.clock(), [self.settings["oauth_token"]])
        if outcome.status == "dead" and response.status_code == 400:
            return Outcome.dead(f"Metrica refused the upload: {_errors(response)}", response=outcome.response)
        return outcome

    def check(self) -> CheckResult:
        try:
            response = self.ctx.http.get(self._counter_url("/goals"), headers=self._headers(), timeout=self._timeout())
        except requests.RequestException as exc:
            return CheckResult(False, f"could not reach Metrica: {type(exc).__name__}")
        if response.status_code != 200:
            return CheckResult(False, f"Metrica answered HTTP {response.status_code}: {_errors(response)}")
        known = {str(g.get("conditions", [{}])[0].get("url") or "") for g in (response.json() or {}).get("goals") or []
                 if g.get("type") == "action" and g.get("conditions")}
        needed = {g.name for g in self._goals  # CHATS count under Metrica's own "Chat" goal
                  if not (g.trigger == "first_message" and self.settings.get("chats_upload"))}
        missing = sorted(needed - known)
        if missing:
            return CheckResult(False, f"counter {self.settings['counter_id']} has no JavaScript event goal "
                                      f"{', '.join(missing)}: create it in Metrica (Goals > JavaScript event, "
                                      "condition 'matches')")
        return CheckResult(True, f"counter {self.settings['counter_id']} has the goals {', '.join(sorted(needed))}")

    def preview(self, batch: list[Any]) -> list[dict[str, Any]]:
        out = []
        for event in batch:
            conversions = analytics.conversions_for(event, self._goals, self.settings.get("currency") or "RUB")
            if conversions:
                try:
                    out.append({"method": "POST", "path": self._counter_url("/offline_conversions/upload"),
                                "body": {"type": mapping.upload_type(conversions, self.settings),
                                         "file": mapping.csv_file(conversions, self.settings)}})
                except (analytics.Skip, analytics.Malformed) as exc:
                    out.append({"method": "-", "path": "/offline_conversions/upload", "body": {"skipped": str(exc)}})
        return out


def _errors(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") or []
    return "; ".join(f"{e.get('error_type')}: {e.get('message')}" for e in errors) or str(body.get("message") or "")
