"""Meta Conversions API for business messaging: WhatsApp leads and won deals of
Click-to-WhatsApp ads back to the ad's dataset (ctwa_clid), so Ads Manager counts
purchases and cost per purchase rather than conversations started.

Graph errors come as {"error": {"code", "error_subcode", "message"}}, mostly HTTP 400:
code 190 (token) is dead until the token is replaced; 4/17/32/613 (rate limits) and
1/2 (temporary) are retried; the others are dead with Meta's message.
"""
from __future__ import annotations

from typing import Any

import requests

from connectors import analytics
from connectors.base import CheckResult, Connector, Outcome
from connectors.meta_capi import mapping
from connectors.meta_capi.settings import EVENT_NAME, MetaCapiSettings
from hub.shared.http import describe_response, parse_retry_after

RETRIED_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80004})
TOKEN_CODES = frozenset({102, 190})


def graph_error(response: requests.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


class MetaCapiConnector(analytics.Destination, Connector):
    kind = "meta_capi"
    title = "Meta Conversions API (business messaging)"
    Settings = MetaCapiSettings
    handles = analytics.HANDLED
    service = "Meta"
    goal_name = EVENT_NAME

    def _url(self, path: str = "/events") -> str:
        return (f"{self.settings['graph_url'].rstrip('/')}/{self.settings['api_version']}/"
                f"{self.settings['dataset_id']}{path}")

    def _outcome(self, response: requests.Response) -> Outcome:
        secrets = [self.settings["access_token"]]
        if 200 <= response.status_code < 300:
            return analytics.classify(response, self.service, self.ctx.clock(), secrets)
        error, described = graph_error(response), describe_response(response, secrets)
        code = error.get("code")
        words = f"{error.get('message') or 'no message'} (code {code}, subcode {error.get('error_subcode')})"
        if code in TOKEN_CODES or (response.status_code in (401, 403) and code is None):
            return Outcome.dead(f"Meta refused the access token: {words}; replace it in the connector's settings, "
                                "then replay", response=described)
        if code in RETRIED_CODES or response.status_code in (429,) or response.status_code >= 500:
            return Outcome.retry(f"Meta asks to try later: {words}",
                                 retry_at=parse_retry_after(response.headers.get("Retry-After"), self.ctx.clock()),
                                 response=described)
        return Outcome.dead(f"Meta refused the event: {words}", response=described)

    def send(self, conversions: list[analytics.Conversion]) -> Outcome:
        body = mapping.body(conversions, self.settings)
        try:
            response = self.ctx.http.post(self._url(), json=body, params={"access_token": self.settings["access_token"]},
                                          timeout=self.settings.get("timeout_seconds", 10.0), allow_redirects=False)
        except requests.Timeout:
            return Outcome.retry("Meta did not answer in time")
        except requests.RequestException as exc:
            return Outcome.retry(f"could not reach Meta: {type(exc).__name__}")
        return self._outcome(response)

    def check(self) -> CheckResult:
        try:
            response = self.ctx.http.get(self._url(""), params={"access_token": self.settings["access_token"],
                                                                 "fields": "id,name"},
                                         timeout=self.settings.get("timeout_seconds", 10.0))
        except requests.RequestException as exc:
            return CheckResult(False, f"could not reach Meta: {type(exc).__name__}")
        if response.status_code == 200:
            name = (response.json() or {}).get("name") or self.settings["dataset_id"]
            return CheckResult(True, f"dataset {name!r} is reachable with this token")
        outcome = self._outcome(response)
        return CheckResult(False, outcome.error)

    def preview(self, batch: list[Any]) -> list[dict[str, Any]]:
        out = []
        for event in batch:
            conversions = analytics.conversions_for(event, self._goals, self.settings.get("currency") or "USD")
            if conversions:
                try:
                    out.append({"method": "POST", "path": f"/{self.settings['dataset_id']}/events",
                                "body": mapping.body(conversions, self.settings)})
                except (analytics.Skip, analytics.Malformed) as exc:
                    out.append({"method": "-", "path": "/events", "body": {"skipped": str(exc)}})
        return out
