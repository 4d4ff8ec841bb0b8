"""A minimal, fast HTTP receiver for benchmarks: answers 200 to every POST (after an
optional latency, like a real endpoint across a network) and counts distinct
webhook-ids; GET returns {"requests": n, "distinct": m}.

    python bench/receiver.py <port> [latency_ms]
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
lock = threading.Lock()
seen: set[str] = set()
total = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if LATENCY:
            time.sleep(LATENCY)
        with lock:
            total[0] += 1
            seen.add(self.headers.get("webhook-id", ""))
        self._reply(b"{}")

    def do_GET(self) -> None:
        with lock:
            body = json.dumps({"requests": total[0], "distinct": len(seen - {""})}).encode()
        self._reply(body)

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    server.serve_forever()
