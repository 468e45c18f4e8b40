"""The container contract as a plain WSGI callable: ``GET /ping`` and ``POST /invocations``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from rightsizer.schema import MAX_PAYLOAD_BYTES
from rightsizer.serving.handler import Handler

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def make_app(handler: Handler) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return _error(start_response, 405, "use GET /ping")
            # The model is loaded before the server accepts connections, so up means ready.
            return _send(start_response, 200, b"", "text/plain")
        if path != "/invocations":
            return _error(start_response, 404, "the container serves /ping and /invocations")
        if method != "POST":
            return _error(start_response, 405, "use POST /invocations")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return _error(start_response, 413, "the body is over SageMaker's 6 MB invoke limit")
        body = environ["wsgi.input"].read()
        response = handler.invoke(body, environ.get("CONTENT_TYPE"), environ.get("HTTP_ACCEPT"))
        return _send(start_response, response.status, response.body, response.content_type)

    return app


def _send(start_response: StartResponse, status: int, body: bytes, ctype: str) -> list[bytes]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a code user code chose that http.HTTPStatus does not name
        phrase = "Error"
    start_response(
        f"{status} {phrase}",
        [("Content-Type", ctype), ("Content-Length", str(len(body)))],
    )
    return [body]


def _error(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    body = json.dumps({"error": message, "status": status}).encode()
    return _send(start_response, status, body, "application/json")
