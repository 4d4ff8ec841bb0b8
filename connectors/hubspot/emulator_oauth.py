"""The emulator's OAuth: the install page (/oauth/authorize) and the token endpoint
(/oauth/v1/token) with single-use codes and refresh tokens that do not rotate."""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

from flask import Flask, Response, request

from connectors.hubspot.emulator_requests import ok
from connectors.hubspot.emulator_state import State


def register(app: Flask, state: State) -> None:
    opts = state.options

    def oauth_refused(code: str, message: str) -> Response:
        with state.lock:
            state.counters["oauth_refused"] += 1
        body = {"status": code, "message": message, "correlationId": str(uuid.uuid4())}
        return Response(json.dumps(body), status=400, mimetype="application/json")

    @app.get("/oauth/authorize")
    def oauth_authorize() -> Response:
        """The install page (app.hubspot.com/oauth/authorize). HubSpot shows an error page,
        not a redirect, for an unknown app, an unregistered redirect URL or no scopes; once
        the user approves it sends the browser to redirect_uri?code=...&state=..., and to
        redirect_uri?error=access_denied&state=... when they decline."""
        args = request.args
        if args.get("client_id") != opts.client_id:
            return Response("This app does not exist (unknown client_id).", status=400, mimetype="text/plain")
        redirect_uri = args.get("redirect_uri") or ""
        if redirect_uri not in (opts.redirect_uri, *opts.redirect_uris):
            return Response("The redirect URL does not match any of the app's redirect URLs.", status=400,
                            mimetype="text/plain")
        if not (args.get("scope") or "").split():
            return Response("The install URL names no scopes.", status=400, mimetype="text/plain")
        answer = {"state": args["state"]} if args.get("state") else {}
        if not opts.approve_installs:
            answer = {"error": "access_denied", "error_description": "The user declined to install the app",
                      **answer}
        else:
            code = str(uuid.uuid4())
            with state.lock:
                state.oauth_codes[code] = {"redirect_uri": redirect_uri, "used": False}
            answer = {"code": code, **answer}
        separator = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": redirect_uri + separator + urlencode(answer)})

    @app.post("/oauth/v1/token")
    def oauth_token() -> Response:
        # Form-encoded only: a JSON body carries none of the fields.
        form = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
        grant = form.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            return oauth_refused("BAD_GRANT_TYPE", "missing or unknown grant_type")
        if form.get("client_id") != opts.client_id:
            return oauth_refused("BAD_CLIENT_ID", "missing or unknown client_id")
        if form.get("client_secret") != opts.client_secret:
            return oauth_refused("BAD_CLIENT_SECRET", "missing or invalid client secret")
        with state.lock:
            if grant == "authorization_code":
                entry = state.oauth_codes.get(form.get("code") or "")
                if entry is None or entry["used"]:
                    return oauth_refused("BAD_AUTH_CODE", "missing or unknown auth code")
                if form.get("redirect_uri") != entry["redirect_uri"]:
                    return oauth_refused("BAD_REDIRECT_URI", "redirect_uri does not match the one the code "
                                                             "was issued for")
                entry["used"] = True
                refresh = str(uuid.uuid4())
                state.refresh_tokens[refresh] = {"revoked": False}
                state.counters["oauth_code_exchanges"] += 1
            else:
                refresh = form.get("refresh_token") or ""
                entry = state.refresh_tokens.get(refresh)
                if entry is None or entry["revoked"]:
                    state.counters["oauth_dead_refresh_presented"] += 1
                    return oauth_refused("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
                state.counters["oauth_refreshes"] += 1
            access = state.issue_access_token(refresh)
        # HubSpot's refresh tokens do not rotate: the same one comes back on every refresh.
        return ok({"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                   "expires_in": opts.access_token_ttl})
