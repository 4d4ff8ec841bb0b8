"""A local fake of Meta's Graph API for Instagram messaging, for tests, benchmarks and
demos only (production code never imports it). It follows the Messenger Platform's
Instagram docs:

- POST /{version}/{ig-user-id}/messages (or /me/messages), token in the Authorization
  header or access_token: recipient.id must be a customer who wrote to the account;
  messaging_type RESPONSE within 24 hours of their last message, MESSAGE_TAG with tag
  HUMAN_AGENT within 7 days, else (#10) subcode 2018278 outside of allowed window;
  text of at most 1000 characters or one attachment (image, video, audio, file by url),
  at most 13 quick replies (titles of at most 20); answers {"recipient_id",
  "message_id"} or Meta's error bodies: 190 bad token, 100 invalid parameter, 551 the
  person is unavailable, 613 past the per-account call rate, any error injected with
  fail_next();
- GET /{version}/{ig-user-id}?fields=username (or /me): {"id", "username"};
- GET /{version}/{IGSID}?fields=name,username,profile_pic (the User Profile API): a
  customer's profile, once they wrote to the token's account; (#230) "User consent is
  required to access user profile" before that;
- GET /ig_messaging_cdn/?asset_id=...: an attachment's bytes, as Meta's lookaside CDN.

Make a customer write; the webhook ({"object": "instagram", "entry": [...]}) is POSTed
to the URL set with subscribe(), signed with the app secret (X-Hub-Signature-256), when
flush() runs (retried on non-2xx)::

    emu = InstagramEmulator(transport=FlaskTransport(hub_client))
    account = emu.add_account("shop")
    with emu.serve() as base_url:            # the hub's channel api_base_url
        emu.subscribe(account, hub_webhook_url)
        ana = emu.customer(account, "1234567890123456")
        ana.send_text("Hi!")
        emu.flush()                          # the hub receives the webhook
        emu.sent                             # what the account sent
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

from flask import Flask, Response, request

from hub.channels.emulator_http import HttpTransport, serving
from hub.channels.instagram.emulator.state import Account, GraphError, Sent, World, bad_token, consent_required, \
    dumps, echo_webhook, now_ms

__all__ = ["InstagramEmulator", "Customer", "Account", "Sent", "GraphError", "HttpTransport"]


class Customer:
    """An Instagram user writing to one account (their IGSID is scoped to it)."""

    def __init__(self, emu: "InstagramEmulator", account: Account, igsid: str):
        self.emu, self.account, self.id = emu, account, igsid

    def _event(self, **content: Any) -> dict[str, Any]:
        world = self.emu.world
        event = {"sender": {"id": self.id}, "recipient": {"id": self.account.id},
                 "timestamp": now_ms(world.clock), **content}
        if "read" not in content and not (content.get("message") or {}).get("is_deleted"):
            world.last_message[(self.account.id, self.id)] = world.clock()  # opens both windows again
            world.unavailable.discard((self.account.id, self.id))
        self.account.pending.append({"object": "instagram", "entry": [
            {"time": now_ms(world.clock), "id": self.account.id, "messaging": [event]}]})
        return event

    def send_text(self, text: str, *, reply_to: str | None = None) -> str:
        mid = self.emu.world.next_mid()
        message: dict[str, Any] = {"mid": mid, "text": text}
        if reply_to:
            message["reply_to"] = {"mid": reply_to}
        self._event(message=message)
        return mid

    def send_attachment(self, kind: str, url: str | None = None, data: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
                        content_type: str = "image/jpeg") -> str:
        """An image, video, audio or file; without `url`, `data` served from the
        emulator's CDN (GET /ig_messaging_cdn/?asset_id=...) while it serves."""
        if url is None:
            url = self.emu.world.add_asset(data, content_type, self.emu.base_url or "http://127.0.0.1")
        mid = self.emu.world.next_mid()
        self._event(message={"mid": mid, "attachments": [{"type": kind, "payload": {"url": url}}]})
        return mid

    def reply_to_story(self, text: str, story_id: str = "17900000000000099") -> str:
        mid = self.emu.world.next_mid()
        self._event(message={"mid": mid, "text": text, "reply_to": {"story": {
            "id": story_id, "url": f"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={story_id}"}}})
        return mid

    def react(self, mid: str, emoji: str = "\u2764\ufe0f") -> None:
        self._event(reaction={"mid": mid, "action": "react", "reaction": "love", "emoji": emoji})

    def press_quick_reply(self, title: str, payload: str) -> str:
        mid = self.emu.world.next_mid()
        self._event(message={"mid": mid, "text": title, "quick_reply": {"payload": payload}})
        return mid

    def press_button(self, title: str, payload: str) -> str:
        mid = self.emu.world.next_mid()
        self._event(postback={"mid": mid, "title": title, "payload": payload})
        return mid

    def come_from_ad(self, ad_id: str, ref: str | None = None, ad_title: str = "An ad") -> None:
        referral = {"ad_id": ad_id, "source": "ADS", "type": "OPEN_THREAD", "ads_context_data": {"ad_title": ad_title}}
        if ref:
            referral["ref"] = ref
        self._event(referral=referral)

    def delete(self, mid: str) -> None:
        self._event(message={"mid": mid, "is_deleted": True})

    def become_unavailable(self) -> None:
        """Sends to them fail with 551 (they blocked the account or deactivated)."""
        self.emu.world.unavailable.add((self.account.id, self.id))

    def received(self) -> list[Sent]:
        return [s for s in self.emu.world.sent if s.recipient_id == self.id and s.account_id == self.account.id]

    def set_profile(self, name: str | None, username: str | None, profile_pic: str | None = None) -> None:
        """What the User Profile API answers for this customer."""
        self.emu.world.profiles[(self.account.id, self.id)] = {"name": name, "username": username,
                                                               "profile_pic": profile_pic}

    def reply_from_app(self, text: str) -> str:
        """The business answers this customer in the Instagram app: Meta echoes it."""
        world = self.emu.world
        mid = world.next_mid()
        self.account.pending.append(echo_webhook(self.account.id, self.id, now_ms(world.clock),
                                                 {"mid": mid, "text": text}))
        return mid


class InstagramEmulator:
    def __init__(self, clock: Callable[[], datetime] | None = None, *,
                 transport: Callable[[str, bytes, Mapping[str, str]], Any] | None = None, **limits: Any):
        self.world = World(clock, **limits)
        self.transport = transport or HttpTransport()
        self.base_url: str | None = None
        self.app = create_app(self)
        self.attempts: list[int] = []  # HTTP status of every webhook POST

    def add_account(self, username: str = "shop", ig_id: str | None = None, **secrets: Any) -> Account:
        return self.world.add_account(username, ig_id, **secrets)

    def customer(self, account: Account, igsid: str) -> Customer:
        return Customer(self, account, igsid)

    def subscribe(self, account: Account, url: str) -> None:
        """The app's webhook (set in Meta's app dashboard) for this account's messages."""
        account.webhook_url = url

    def fail_next(self, code: int, message: str, *, subcode: int | None = None, status: int = 400,
                  count: int = 1) -> None:
        self.world.fail_next(code, message, subcode, status, count)

    @property
    def sent(self) -> list[Sent]:
        return list(self.world.sent)

    def flush(self, *, duplicate: bool = False, max_rounds: int = 5) -> int:
        """POST every pending webhook to its account's URL, in order, each until a 2xx
        (at most `max_rounds` tries per flush); `duplicate`: each accepted one once more,
        as Meta does. Returns how many were accepted."""
        accepted = 0
        for account in list(self.world.accounts.values()):
            for _ in range(max_rounds):
                if not account.pending or not account.webhook_url:
                    break
                while account.pending:
                    if not self._post(account, account.pending[0]):
                        break
                    body = account.pending.popleft()
                    accepted += 1
                    if duplicate:
                        self._post(account, body)
        return accepted

    def _post(self, account: Account, body: dict[str, Any]) -> bool:
        raw = dumps(body)
        signature = "sha256=" + hmac.new(account.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        try:
            status = int(self.transport(account.webhook_url, raw, {
                "Content-Type": "application/json", "X-Hub-Signature-256": signature,
                "User-Agent": "facebookexternalua"}).status_code)
        except Exception:
            status = 0
        self.attempts.append(status)
        return 200 <= status < 300

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run the API on host:port (0: a free port) in a thread; yields its base URL."""
        with serving(self.app, "instagram-emulator", host, port) as base:
            self.base_url = base
            try:
                yield base
            finally:
                self.base_url = None


def _answer(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json")


def create_app(emu: InstagramEmulator) -> Flask:
    app = Flask("instagram_emulator")
    world = emu.world

    def _token() -> str:
        header = request.headers.get("Authorization", "")
        return header[7:] if header.startswith("Bearer ") else request.args.get("access_token", "")

    def profile(account: Account, igsid: str):
        """The User Profile API: only a customer who wrote to the account (consent)."""
        with world.lock:
            injected = world._injected()
        if injected is not None:
            raise injected
        if (account.id, igsid) not in world.last_message:
            raise consent_required()
        known = {"id": igsid, "name": None, "username": None, "profile_pic": None,
                 **world.profiles.get((account.id, igsid), {})}
        fields = [f for f in request.args.get("fields", "id").split(",") if f]
        unknown = [f for f in fields if f not in known]
        if unknown:
            raise GraphError(100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type "
                                  f"(InstagramUser)", type_="IGApiException")
        world.requests.append((account.id, "profile", 200))
        return _answer({"id": igsid, **{f: known[f] for f in fields if known[f] is not None}})

    def authorised(node: str) -> Account:
        account = world.by_token(_token())
        if account is None or node not in ("me", account.id):
            raise bad_token()
        return account

    @app.errorhandler(GraphError)
    def _graph_error(exc: GraphError):
        world.requests.append(("", request.path, exc.status))
        return _answer(exc.body(), exc.status)

    @app.get("/<version>/<node>")
    def node(version: str, node: str):
        owner = world.by_token(_token())
        if owner is not None and node not in ("me", owner.id):
            return profile(owner, node)  # a customer's IGSID
        account = authorised(node)
        fields = [f for f in request.args.get("fields", "id").split(",") if f]
        known = {"id": account.id, "username": account.username, "name": account.username.title()}
        unknown = [f for f in fields if f not in known]
        if unknown:
            raise GraphError(100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type "
                                  f"(IGUser)", type_="IGApiException")
        world.requests.append((account.id, "GET", 200))
        return _answer({"id": account.id, **{f: known[f] for f in fields}})

    @app.get("/ig_messaging_cdn/")
    def cdn():
        asset = world.assets.get(request.args.get("asset_id", ""))
        if asset is None:
            return Response("URL signature expired", status=403, mimetype="text/plain")
        return Response(asset[0], mimetype=asset[1])

    @app.post("/<version>/<node>/messages")
    def messages(version: str, node: str):
        account = authorised(node)
        result = world.send(account, request.get_json(silent=True))
        world.requests.append((account.id, "messages", 200))
        return _answer(result)

    return app
