"""The emulator's HTTP face: Graph API paths (Bearer token per number/WABA) and
360dialog's relay paths (D360-API-KEY per number) over one WhatsAppEmulator.

Graph (prefix = the emulator's api_version, e.g. /v25.0):
    POST   /{v}/{phone_number_id}/messages          send, or mark as read
    POST   /{v}/{phone_number_id}/media             multipart upload
    GET    /{v}/{node_id}                           phone number fields, media URL, template
    DELETE /{v}/{media_id}                          delete uploaded media
    GET/POST/DELETE /{v}/{waba_id}/message_templates
    GET    /whatsapp_business/attachments/?mid=&ext=&hash=   download (Bearer or D360 key)
360dialog (the same server plays waba-v2.360dialog.io):
    POST /messages, POST /media, GET|DELETE /{media_id}, GET|POST /v1/configs/templates,
    GET|POST /v1/configs/webhook
"""
from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, jsonify, request

from hub.channels.whatsapp.emulator.errors import GraphError, bad_token, fbtrace_id, no_such_object
from hub.channels.whatsapp.emulator.state import TEMPLATE_FIELDS, Number, RequestRecord

if TYPE_CHECKING:
    from hub.channels.whatsapp.emulator import WhatsAppEmulator


class D360Unauthorized(Exception):
    """360dialog's own answer to a missing or unknown D360-API-KEY (❓ body shape)."""


def create_app(emu: "WhatsAppEmulator") -> Flask:
    app = Flask("whatsapp_emulator", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 120 * 2**20
    app.json.sort_keys = False  # keep Meta's key order (messaging_product first)

    @app.errorhandler(GraphError)
    def graph_error(err: GraphError) -> Any:
        return jsonify(err.body()), err.http_status

    @app.errorhandler(D360Unauthorized)
    def d360_unauthorized(_err: D360Unauthorized) -> Any:
        return jsonify({"meta": {"success": False, "http_code": 401,
                                 "developer_message": "Invalid api key",
                                 "360dialog_trace_id": fbtrace_id()}}), 401

    @app.after_request
    def record(resp: Response) -> Response:
        body = request.get_json(silent=True) if request.is_json else None
        with emu.lock:
            emu.requests.append(RequestRecord(request.method, request.path,
                                              g.get("endpoint", ""), resp.status_code, body))
        return resp

    # -- helpers ---------------------------------------------------------------------

    def gate(endpoint: str) -> None:
        g.endpoint = endpoint
        rule = emu.take_failure(endpoint)
        if rule is not None:
            emu.apply_failure(rule)

    def check_version(version: str) -> None:
        if version != emu.api_version:
            raise GraphError(2500, f"Unknown path components: {request.path} (this emulator "
                                   f"serves {emu.api_version})")

    def bearer() -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or request.args.get("access_token", "")
        if not token:
            raise bad_token(missing_header=True)
        if not any(n.token and hmac.compare_digest(n.token, token) for n in emu.numbers.values()):
            raise bad_token(missing_header=False)
        return token

    def may_see_waba(token: str, waba_id: str) -> bool:
        return any(n.waba_id == waba_id and n.token and hmac.compare_digest(n.token, token)
                   for n in emu.numbers.values() if not n.is_360dialog)

    def graph_number(pnid: str, method: str) -> Number:
        token = bearer()
        number = emu.numbers.get(pnid)
        if number is None or number.is_360dialog or not may_see_waba(token, number.waba_id):
            raise no_such_object(pnid, method)
        return number

    def d360_number() -> Number:
        key = request.headers.get("D360-API-KEY", "")
        for number in emu.numbers.values():
            if number.is_360dialog and key and hmac.compare_digest(number.d360_key or "", key):
                return number
        raise D360Unauthorized()

    def json_or_form() -> Any:
        body = request.get_json(silent=True)
        if body is not None:
            return body
        form = request.form.to_dict()
        if "components" in form:
            try:
                form["components"] = json.loads(form["components"])
            except ValueError:
                raise GraphError(100, "Param components must be a JSON array.") from None
        return form

    # -- Graph -----------------------------------------------------------------------

    @app.post("/<version>/<pnid>/messages")
    def graph_send(version: str, pnid: str) -> Any:
        check_version(version)
        gate("messages")
        return jsonify(emu.send(graph_number(pnid, "post"), request.get_data(), version))

    @app.post("/<version>/<pnid>/media")
    def graph_upload(version: str, pnid: str) -> Any:
        check_version(version)
        gate("media")
        return jsonify(emu.upload_media(graph_number(pnid, "post"), request.form, request.files))

    @app.get("/<version>/<node_id>")
    def graph_node(version: str, node_id: str) -> Any:
        check_version(version)
        number, media, tpl = emu.numbers.get(node_id), emu.media.get(node_id), emu.templates.get(node_id)
        gate("phone_number" if number else "media_url" if media else "templates" if tpl else "node")
        if number is not None:
            return jsonify(emu.phone_number_fields(graph_number(node_id, "get"), request.args.get("fields")))
        token = bearer()
        if media is not None and media.alive(emu.clock()) and may_see_waba(token, media.waba_id):
            return jsonify(emu.media_info(media, request.host_url, request.args.get("phone_number_id")))
        if tpl is not None and may_see_waba(token, tpl.waba_id):
            fields = emu._fields(request.args.get("fields"), TEMPLATE_FIELDS,
                                 ["name", "status", "category", "language", "id"], "WhatsAppBusinessHSM")
            return jsonify(tpl.graph(fields, emu.clock()))
        raise no_such_object(node_id, "get")

    @app.delete("/<version>/<node_id>")
    def graph_delete(version: str, node_id: str) -> Any:
        check_version(version)
        gate("media")
        token = bearer()
        media = emu.media.get(node_id)
        if media is None or not media.alive(emu.clock()) or not may_see_waba(token, media.waba_id):
            raise no_such_object(node_id, "delete")
        return jsonify(emu.delete_media(media))

    @app.route("/<version>/<waba_id>/message_templates", methods=["GET", "POST", "DELETE"])
    def graph_templates(version: str, waba_id: str) -> Any:
        check_version(version)
        gate("templates")
        if not may_see_waba(bearer(), waba_id):
            raise no_such_object(waba_id, request.method.lower())
        if request.method == "GET":
            page_url = request.host_url.rstrip("/") + request.path
            return jsonify(emu.list_templates(waba_id, request.args.to_dict(), page_url))
        if request.method == "POST":
            return jsonify(emu.create_template(waba_id, json_or_form()))
        return jsonify(emu.delete_templates(waba_id, request.args.get("name"), request.args.get("hsm_id")))

    @app.get("/whatsapp_business/attachments/")
    def download() -> Any:
        gate("download")
        media = emu.media.get(request.args.get("mid", ""))
        owner = emu.numbers.get(media.phone_number_id) if media else None
        if owner is not None and owner.is_360dialog:
            if d360_number().phone_number_id != owner.phone_number_id:
                raise D360Unauthorized()
        elif owner is not None:
            if not may_see_waba(bearer(), owner.waba_id):
                raise bad_token(missing_header=False)
        valid = emu.media_for_download(request.args)
        if valid is None:
            return Response("Not Found", 404, mimetype="text/plain")
        return Response(valid.data, 200, mimetype=valid.mime_type.split(";")[0],
                        headers={"Content-Disposition": f"attachment; filename={valid.filename or valid.id}"})

    # -- 360dialog -------------------------------------------------------------------

    @app.post("/messages")
    def d360_send() -> Any:
        gate("messages")
        return jsonify(emu.send(d360_number(), request.get_data(), None))

    @app.post("/media")
    def d360_upload() -> Any:
        gate("media")
        return jsonify(emu.upload_media(d360_number(), request.form, request.files))

    @app.route("/<media_id>", methods=["GET", "DELETE"])
    def d360_media(media_id: str) -> Any:
        gate("media_url" if request.method == "GET" else "media")
        number = d360_number()
        media = emu.media.get(media_id)
        if media is None or media.phone_number_id != number.phone_number_id or not media.alive(emu.clock()):
            raise no_such_object(media_id, request.method.lower())
        if request.method == "DELETE":
            return jsonify(emu.delete_media(media))
        return jsonify(emu.media_info(media, request.host_url, request.args.get("phone_number_id")))

    @app.route("/v1/configs/templates", methods=["GET", "POST"])
    def d360_templates() -> Any:
        gate("templates")
        number = d360_number()
        if request.method == "GET":
            return jsonify(emu.d360_list_templates(number, request.args.to_dict()))
        return jsonify(emu.create_template(number.waba_id, json_or_form()))

    @app.route("/v1/configs/webhook", methods=["GET", "POST"])
    def d360_webhook() -> Any:
        g.endpoint = "webhook_config"
        number = d360_number()
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
                raise GraphError(100, 'The body must be {"url": "...", "headers": {...}}.')
            headers = body.get("headers") or {}
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                raise GraphError(100, "headers must map header names to strings.")
            with emu.lock:
                number.webhook_url, number.webhook_headers = body["url"], dict(headers)
        return jsonify({"url": number.webhook_url})

    return app
