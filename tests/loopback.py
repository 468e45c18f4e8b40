"""Loopback HTTP servers for tests: a handler class served on 127.0.0.1 from a thread.

Stand-ins for an endpoint or for the SageMaker runtime; each test module defines what its
handler answers, and this module how it is served and stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port; yields the base URL, stops on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a connection left open does not hold the shutdown up
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def send_whole(
    handler: BaseHTTPRequestHandler, status: int, body: bytes,
    content_type: str = "application/json",
) -> None:
    """Answer with a whole body of known length."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
