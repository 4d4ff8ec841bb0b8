"""A minimal, fast HTTP receiver for benchmarks: answers 200 to every POST (after an
optional latency, like a real endpoint across a network) and counts distinct
webhook-ids; GET returns {"requests": n, "distinct": m}.

One asyncio process with a bare HTTP/1.1 keep-alive parser: a wait costs a timer, not
a thread, and a request costs a few string splits. The threaded http.server it replaces
spent several times the CPU per request (a thread per connection, email-module header
parsing) on the same two cores as the workers it measured, so under load the receiver,
not the hub, set the 4-worker figure.

    python bench/receiver.py <port> [latency_ms]
"""
from __future__ import annotations

import asyncio
import json
import socket
import sys

LATENCY = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
seen: set[str] = set()
total = 0


def reply(body: bytes, keep_alive: bool) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), b"" if keep_alive else b"Connection: close\r\n")) + body


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global total
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            version = rest.rpartition(" ")[2]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length:
                try:
                    await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
            keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            if method == "POST":
                if LATENCY:
                    await asyncio.sleep(LATENCY)
                total += 1
                seen.add(headers.get("webhook-id", ""))
                body = b"{}"
            else:
                body = json.dumps({"requests": total, "distinct": len(seen - {""})}).encode()
            writer.write(reply(body, keep_alive))
            if not keep_alive:
                return
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=256)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
