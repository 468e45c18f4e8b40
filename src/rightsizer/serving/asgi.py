"""What both servers share: raw ASGI types, prepared JSON responses, and uvicorn's settings."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from rightsizer.serving.process import HOST

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Reply = tuple[Message, Message]


def reply(status: int, body: bytes, content_type: str) -> Reply:
    headers = [(b"content-type", content_type.encode("latin-1")),
               (b"content-length", str(len(body)).encode())]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


def json_reply(status: int, document: dict[str, Any]) -> Reply:
    return reply(status, json.dumps(document).encode(), "application/json")


def error_reply(status: int, message: str) -> Reply:
    return json_reply(status, {"error": message, "status": status})


async def send_reply(send: Send, message: Reply) -> None:
    await send(message[0])
    await send(message[1])


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def serve(app: ASGIApp, port: int, lifespan: bool = False) -> None:
    """Run ``app`` on 127.0.0.1:port until SIGTERM/SIGINT, with the fastest parts installed.

    Keep-alive is long (clients of a load test hold connections), access logging is off (it
    would cost more than a request), and the backlog is large (bursts of new connections).
    """
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        lifespan="on" if lifespan else "off",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()
