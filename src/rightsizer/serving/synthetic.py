"""An endpoint of known capacity: ``slots`` requests served at once, each taking ``service_ms``.

True capacity is ``slots / service_ms`` requests per millisecond; beyond it requests wait in a
bounded queue, and a full queue answers 503. Service times are ``fixed``, ``exponential`` or
``uniform`` on ``service_ms x [1 - service_spread, 1 + service_spread]`` (variable but bounded,
like the requests of a generative model whose outputs vary in length within a limit). A
background ``failure_rate`` answers 500 at any load, and for ``cold_start_seconds`` after
start every service time is multiplied by ``cold_start_factor``.

The server must never be the bottleneck itself, so a request only sleeps (asyncio, one
process, a raw ASGI app under uvicorn with the fastest parser and loop installed), and slots
are accounted in virtual time (see ``SlotSchedule``).

    python -m rightsizer.serving.synthetic --port P --slots 4 --service-ms 10 [--queue 64] ...
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import time
from collections.abc import Callable

from pydantic import ValidationError

from rightsizer.schema import SyntheticModel, format_errors
from rightsizer.serving.asgi import (
    Receive,
    Reply,
    Scope,
    Send,
    error_reply,
    json_reply,
    send_reply,
    serve,
)
from rightsizer.serving.process import (
    core_for,
    exit_if_port_taken,
    exit_with_parent,
    parse_cpus,
    pin,
)

# Built once: the hot path only sends prepared messages.
OK = json_reply(200, {"predictions": [{"class": 0}]})
PONG = json_reply(200, {"status": "healthy"})
FAILED = error_reply(500, "synthetic failure (failure_rate)")
BUSY = error_reply(503, "queue full: all slots busy and the queue is at its bound")
NOT_FOUND = error_reply(404, "the endpoint serves /ping and /invocations")


class SlotSchedule:
    """``slots`` servers taking requests first come, first served, kept in virtual time.

    Each admitted request is given its finish time at once: the earliest free slot's time (or
    now) plus its service time. Event-loop lag then only delays sending a response, never a
    slot's next request, so capacity is exactly slots / service time even when the loop is
    busy. (Sleeping under an asyncio.Semaphore lost ~20% at 3,000 requests/s: each release
    waits for the loop to wake the next request.)
    """

    def __init__(self, slots: int) -> None:
        self.free_at = [0.0] * slots  # heap: when each slot finishes its last request
        self.pending: list[float] = []  # heap: start times of admitted requests not yet in service

    def waiting(self, now: float) -> int:
        while self.pending and self.pending[0] <= now:
            heapq.heappop(self.pending)
        return len(self.pending)

    def admit(self, now: float, queue: int, service_s: Callable[[float], float]) -> float | None:
        """The finish time of a request arriving ``now``, or None when the queue is full."""
        start = max(now, self.free_at[0])
        if start > now:
            if self.waiting(now) >= queue:
                return None
            heapq.heappush(self.pending, start)
        finish = start + service_s(start)
        heapq.heapreplace(self.free_at, finish)
        return finish


class SyntheticApp:
    """The raw ASGI app: a failure draw, then a slot (or 503), then a sleep until finished."""

    def __init__(self, model: SyntheticModel, seed: int | None = None) -> None:
        self.model = model
        self.random = random.Random(seed)
        self.started = time.monotonic()
        self.schedule = SlotSchedule(model.slots)

    def service_s(self, start: float) -> float:
        seconds = self.draw_service_s()
        if start - self.started < self.model.cold_start_seconds:
            seconds *= self.model.cold_start_factor
        return seconds

    def draw_service_s(self) -> float:
        mean = self.model.service_ms / 1000
        match self.model.service_distribution:
            case "exponential":
                return self.random.expovariate(1 / mean)
            case "uniform":
                spread = self.model.service_spread
                return mean * self.random.uniform(1 - spread, 1 + spread)
        return mean

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
        await send_reply(send, reply)

    async def invoke(self, receive: Receive) -> Reply:
        while (await receive()).get("more_body"):
            pass  # the body is not looked at, only read off the connection
        if self.random.random() < self.model.failure_rate:
            return FAILED
        now = time.monotonic()
        finish = self.schedule.admit(now, self.model.queue, self.service_s)
        if finish is None:
            return BUSY
        await asyncio.sleep(finish - now)
        return OK


def cli_args(model: SyntheticModel) -> list[str]:
    """The command-line flags that describe ``model`` (used by the local endpoint launcher)."""
    return [
        "--slots", str(model.slots),
        "--service-ms", repr(model.service_ms),
        "--distribution", model.service_distribution,
        "--spread", repr(model.service_spread),
        "--queue", str(model.queue),
        "--failure-rate", repr(model.failure_rate),
        "--cold-start-seconds", repr(model.cold_start_seconds),
        "--cold-start-factor", repr(model.cold_start_factor),
    ]


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, SyntheticModel]:
    defaults = SyntheticModel()
    parser = argparse.ArgumentParser(
        prog="python -m rightsizer.serving.synthetic",
        description="Serve an endpoint of known capacity (slots / service time).",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--slots", type=int, default=defaults.slots)
    parser.add_argument("--service-ms", type=float, default=defaults.service_ms)
    parser.add_argument("--distribution", choices=["fixed", "exponential", "uniform"],
                        default=defaults.service_distribution)
    parser.add_argument("--spread", type=float, default=defaults.service_spread,
                        help="uniform only: half-width of the service times, share of the mean")
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
            service_distribution=args.distribution, service_spread=args.spread,
            queue=args.queue,
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
