"""An endpoint of known capacity: ``slots`` requests served at once, each taking ``service_ms``.

True capacity is ``slots / service_ms`` requests per millisecond; beyond it requests wait in a
bounded queue, and a full queue answers 503. A background ``failure_rate`` answers 500 at any
load, and for ``cold_start_seconds`` after start every service time is multiplied by
``cold_start_factor``.

The server must never be the bottleneck itself, so a request only sleeps (asyncio, one
process, a raw ASGI app under uvicorn with the fastest parser and loop installed).

    python -m rightsizer.serving.synthetic --port P --slots 4 --service-ms 10 [--queue 64] ...
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from pydantic import ValidationError

from rightsizer.schema import SyntheticModel, format_errors
from rightsizer.serving.process import (
    HOST,
    core_for,
    exit_if_port_taken,
    exit_with_parent,
    parse_cpus,
    pin,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]


def _response(status: int, document: dict[str, Any]) -> tuple[Message, Message]:
    body = json.dumps(document).encode()
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


# Built once: the hot path only sends prepared messages.
OK = _response(200, {"predictions": [{"class": 0}]})
PONG = _response(200, {"status": "healthy"})
FAILED = _response(500, {"error": "synthetic failure (failure_rate)", "status": 500})
BUSY = _response(503, {"error": "queue full: all slots busy and the queue is at its bound",
                       "status": 503})
NOT_FOUND = _response(404, {"error": "the endpoint serves /ping and /invocations",
                            "status": 404})


class SyntheticApp:
    """The raw ASGI app. Counts waiting requests itself: a Semaphore does not expose them."""

    def __init__(self, model: SyntheticModel, seed: int | None = None) -> None:
        self.model = model
        self.random = random.Random(seed)
        self.started = time.monotonic()
        self.slots = asyncio.Semaphore(model.slots)
        self.waiting = 0

    def service_s(self) -> float:
        mean = self.model.service_ms / 1000
        seconds = (
            self.random.expovariate(1 / mean)
            if self.model.service_distribution == "exponential"
            else mean
        )
        if time.monotonic() - self.started < self.model.cold_start_seconds:
            seconds *= self.model.cold_start_factor
        return seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; nothing else is served
        path = scope["path"]
        if path == "/invocations" and scope["method"] == "POST":
            reply = await self.invoke(receive)
        elif path == "/ping":
            reply = PONG
        else:
            reply = NOT_FOUND
        await send(reply[0])
        await send(reply[1])

    async def invoke(self, receive: Receive) -> tuple[Message, Message]:
        while (await receive()).get("more_body"):
            pass  # the body is not looked at, only read off the connection
        if self.random.random() < self.model.failure_rate:
            return FAILED
        if self.slots.locked() and self.waiting >= self.model.queue:
            return BUSY
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await asyncio.sleep(self.service_s())
        finally:
            self.slots.release()
        return OK


def cli_args(model: SyntheticModel) -> list[str]:
    """The command-line flags that describe ``model`` (used by the local endpoint launcher)."""
    return [
        "--slots", str(model.slots),
        "--service-ms", repr(model.service_ms),
        "--distribution", model.service_distribution,
        "--queue", str(model.queue),
        "--failure-rate", repr(model.failure_rate),
        "--cold-start-seconds", repr(model.cold_start_seconds),
        "--cold-start-factor", repr(model.cold_start_factor),
    ]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def serve(app: SyntheticApp, port: int) -> None:
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, SyntheticModel]:
    defaults = SyntheticModel()
    parser = argparse.ArgumentParser(
        prog="python -m rightsizer.serving.synthetic",
        description="Serve an endpoint of known capacity (slots / service time).",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--slots", type=int, default=defaults.slots)
    parser.add_argument("--service-ms", type=float, default=defaults.service_ms)
    parser.add_argument("--distribution", choices=["fixed", "exponential"],
                        default=defaults.service_distribution)
    parser.add_argument("--queue", type=int, default=defaults.queue)
    parser.add_argument("--failure-rate", type=float, default=defaults.failure_rate)
    parser.add_argument("--cold-start-seconds", type=float, default=defaults.cold_start_seconds)
    parser.add_argument("--cold-start-factor", type=float, default=defaults.cold_start_factor)
    parser.add_argument("--cpus", help="cores the process may run on, e.g. 0 or 0,1")
    parser.add_argument("--seed", type=int, help="seed for service times and failures")
    parser.add_argument("--parent-pid", type=int,
                        help="exit when this process (the launcher) is gone")
    args = parser.parse_args(argv)
    try:
        model = SyntheticModel(
            slots=args.slots, service_ms=args.service_ms,
            service_distribution=args.distribution, queue=args.queue,
            failure_rate=args.failure_rate, cold_start_seconds=args.cold_start_seconds,
            cold_start_factor=args.cold_start_factor,
        )
    except ValidationError as exc:
        parser.error(format_errors(exc))
    return args, model


def main(argv: list[str] | None = None) -> None:
    args, model = parse_args(argv)
    exit_if_port_taken(args.port)
    exit_with_parent(args.parent_pid)
    if args.cpus:
        cpus = parse_cpus(args.cpus, 1)
        pin({core_for(i, cpus) for i in range(len(cpus))})
    serve(SyntheticApp(model, args.seed), args.port)


if __name__ == "__main__":
    main()
