"""What the channels' emulators share to talk HTTP: serving a Flask app on a free port
in a thread, and posting webhooks to the hub. For tests, benchmarks and demos only;
production code never imports it."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Mapping

from werkzeug.serving import WSGIRequestHandler, make_server


class HttpTransport:
    """Real HTTP POSTs of webhooks (the emulators' default)."""

    def __init__(self, timeout: float = 10.0):
        import requests

        self.session = requests.Session()
        self.timeout = timeout

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> Any:
        return self.session.post(url, data=body, headers=dict(headers), timeout=self.timeout)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def serving(app: Any, name: str, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run `app` on host:port (0: a free port) in a thread; yields its base URL."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
