"""A small stand-in for the Graph API endpoints the admin calls (media, template list),
shaped as Meta documents them, served on 127.0.0.1 in a thread."""
from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


class FakeGraph:
    def __init__(self, token: str = "EAAG-test-token"):
        self.token = token
        self.templates: list[dict[str, Any]] = []
        self.requests: list[str] = []
        app = Flask("fake-graph")

        def authorised() -> bool:
            return request.headers.get("Authorization") == f"Bearer {self.token}"

        def refused() -> Response:
            return jsonify({"error": {"message": "Error validating access token", "type": "OAuthException",
                                      "code": 190, "fbtrace_id": "AbCdEf"}}), 401

        @app.get("/<version>/<waba>/message_templates")
        def templates(version: str, waba: str):
            self.requests.append(request.full_path)
            if not authorised():
                return refused()
            return jsonify({"data": self.templates, "paging": {"cursors": {"before": "a", "after": "b"}}})

        @app.get("/<version>/<media_id>")
        def media_info(version: str, media_id: str):
            self.requests.append(request.full_path)
            if not authorised():
                return refused()
            return jsonify({"messaging_product": "whatsapp", "url": f"{self.url}/media-file/{media_id}",
                            "mime_type": "image/jpeg", "sha256": "x", "file_size": len(JPEG), "id": media_id})

        @app.get("/media-file/<media_id>")
        def media_file(media_id: str):
            if not authorised():
                return refused()
            return Response(JPEG, mimetype="image/jpeg")

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeGraph":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
