"""Serving an emulator's Flask app on a free local port, for tests and benchmarks."""
from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Served:
    """`with Served(app, state) as s:` runs the app; `s.base_url`; other attributes are
    the emulator state's."""

    def __init__(self, app: Any, state: Any):
        self.state = state
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> "Served":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)
