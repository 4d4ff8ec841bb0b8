"""The gate every request passes before its route: request counts, injected chaos (5xx, 429
with Retry-After, slow answers), the 10-second rolling limit and the search limit with
HubSpot's 429 bodies and X-HubSpot-RateLimit-* headers, then the Bearer token. Counted
before the token is checked, as HubSpot counts refused calls too."""
from __future__ import annotations

import json
import time
import uuid

from flask import Flask, Response, request

from connectors.hubspot.emulator_errors import ApiError, error_response
from connectors.hubspot.emulator_state import State


def register(app: Flask, state: State) -> None:
    """Install the gate, the limit headers on every answer and the ApiError answer."""
    opts = state.options

    def limit_headers(remaining: int) -> dict[str, str]:
        return {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(opts.per_10_seconds),
                "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
                "X-HubSpot-RateLimit-Daily": str(opts.daily_limit),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(opts.daily_limit - state.counters["accepted"], 0))}

    def too_many(policy: str, message: str, retry_after: int | None = None) -> Response:
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": policy,
                "groupName": f"publicapi:private-app:{state.portal_id}"}
        response = Response(json.dumps(body), status=429, mimetype="application/json")
        response.headers.update(limit_headers(0))
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.before_request
    def gate() -> Response | None:
        with state.lock:
            state.counters["requests"] += 1
            chaos = any(request.path.startswith(p) for p in opts.chaos_paths)
            if chaos and opts.rate429_rate and state.rng.random() < opts.rate429_rate:
                state.counters["injected_429"] += 1
                return too_many("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.",
                                opts.retry_after)
            if chaos and opts.fail_rate and state.rng.random() < opts.fail_rate:
                state.counters["injected_5xx"] += 1
                return error_response(ApiError(502, "Bad Gateway: the upstream service did not answer", "INTERNAL_ERROR"))
            request.environ["hubspot.slow"] = chaos and opts.timeout_rate and state.rng.random() < opts.timeout_rate
            request.environ["hubspot.chaos"] = chaos
            now = time.monotonic()
            if opts.enforce_limits:
                while state.window and now - state.window[0] >= 10.0:
                    state.window.popleft()
                if len(state.window) >= opts.per_10_seconds:
                    state.counters["rate_limited"] += 1
                    return too_many("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
                if request.path.endswith("/search"):
                    while state.search_window and now - state.search_window[0] >= 1.0:
                        state.search_window.popleft()
                    if len(state.search_window) >= opts.search_per_second:
                        state.counters["rate_limited"] += 1
                        state.counters["search_rate_limited"] += 1
                        return too_many("SECONDLY", "You have reached your secondly limit.")
                    state.search_window.append(now)
            state.window.append(now)
            state.counters["accepted"] += 1
            state.counters["path:" + request.method + " " + _route_name(request.path)] += 1
            request.environ["hubspot.remaining"] = opts.per_10_seconds - len(state.window)
        if request.path.startswith("/oauth/"):
            return None  # the token endpoint authenticates the app by its form fields
        if request.path in ("/conversations/v3/custom-channels", "/conversations/custom-channels/v3",
                            "/inbox/threads", "/inbox/threads/reply") and "Authorization" not in request.headers:
            return None  # registered with the developer API key (checked there); the demo page and its form
        auth = request.headers.get("Authorization", "")
        with state.lock:
            problem = state.bearer_problem(auth[7:] if auth.startswith("Bearer ") else "")
        return error_response(problem) if problem else None

    @app.after_request
    def finish(response: Response) -> Response:
        if response.status_code != 429:
            response.headers.update(limit_headers(int(request.environ.get("hubspot.remaining", 0))))
        if request.environ.get("hubspot.slow") and response.status_code < 400:
            with state.lock:
                state.counters["slow_answers"] += 1
            time.sleep(opts.timeout_seconds)
        elif opts.delay_seconds and request.environ.get("hubspot.chaos"):
            time.sleep(opts.delay_seconds)
        return response

    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError) -> Response:
        return error_response(exc)


def _route_name(path: str) -> str:
    parts = [("{id}" if p.isdigit() else p) for p in path.split("/")]
    return "/".join(parts)
