"""Host a user's inference script the way SageMaker's framework containers do.

A front process (uvicorn, keep-alive connections) holds the clients and hands each request to
an idle model worker: one worker process per CPU of the profile, each pinned to its own core
and running one inference at a time, like a real core (see ``workers``). The model is loaded
once, before the server binds, so ``/ping`` answering means the model is ready, and a failing
``model_fn`` stops the process with its traceback on stderr.

    python -m rightsizer.serving.container --model-dir DIR [--script FILE] --port P \
        --workers N --cpus 0,1
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from rightsizer.model_env import find_script
from rightsizer.schema import MAX_PAYLOAD_BYTES
from rightsizer.serving.asgi import (
    Receive,
    Reply,
    Scope,
    Send,
    error_reply,
    reply,
    send_reply,
    serve,
)
from rightsizer.serving.handler import Handler
from rightsizer.serving.process import (
    exit_if_port_taken,
    exit_with_parent,
    limit_native_threads,
    parse_cpus,
    pin,
)
from rightsizer.serving.workers import WorkerPool

EXIT_MODEL_LOAD_FAILED = 3
PONG = reply(200, b"", "text/plain")


class ContainerApp:
    """The container contract as a raw ASGI app: ``GET /ping``, ``POST /invocations``."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await send_reply(send, await self.route(scope, receive))

    async def route(self, scope: Scope, receive: Receive) -> Reply:
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            return PONG if method in ("GET", "HEAD") else error_reply(405, "use GET /ping")
        if path != "/invocations":
            return error_reply(404, "the container serves /ping and /invocations")
        if method != "POST":
            return error_reply(405, "use POST /invocations")
        headers: dict[bytes, str] = {
            name: value.decode("latin-1") for name, value in scope["headers"]}
        body = await read_body(receive)
        if body is None:
            return error_reply(413, "the body is over SageMaker's 6 MB invoke limit")
        return await self.pool.invoke(body, headers.get(b"content-type"), headers.get(b"accept"))

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.pool.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None (after reading it off) when it is over the limit."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_PAYLOAD_BYTES:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks) if size <= MAX_PAYLOAD_BYTES else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rightsizer.serving.container",
        description="Serve a model's inference script on SageMaker's container contract.",
    )
    parser.add_argument("--model-dir", required=True, type=Path,
                        help="the model root (model_dir, SM_MODEL_DIR): the model's files")
    parser.add_argument("--script", type=Path,
                        help="the inference script (default: SAGEMAKER_PROGRAM, default "
                             "inference.py, in SAGEMAKER_SUBMIT_DIRECTORY, code/ or the root)")
    parser.add_argument("--port", type=int, default=int(os.environ.get(
        "SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=1, help="one per CPU of the profile")
    parser.add_argument("--cpus", help="cores to pin workers to, e.g. 0,1 or 0-3 "
                        "(default: 0..workers-1; folded onto the cores available)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one request may run before it is answered 504")
    parser.add_argument("--max-queue", type=int, default=100,
                        help="requests waiting for a worker before 503 (SageMaker's model "
                             "server default is 100)")
    parser.add_argument("--parent-pid", type=int,
                        help="exit when this process (the launcher) is gone")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.timeout <= 0 or args.max_queue < 0:
        parser.error("--workers must be at least 1, --timeout above 0, --max-queue 0 or more")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    limit_native_threads()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [%(process)d] [%(levelname)s] %(message)s")
    exit_if_port_taken(args.port)
    exit_with_parent(args.parent_pid)
    try:
        handler = Handler(args.model_dir, args.script or find_script(
            args.model_dir.resolve(), dict(os.environ)))
    except Exception:
        # The launcher shows this tail as the reason the endpoint failed to deploy.
        print(f"loading the model from {args.model_dir} failed:\n{traceback.format_exc()}",
              file=sys.stderr, flush=True)
        sys.exit(EXIT_MODEL_LOAD_FAILED)
    pool = WorkerPool(handler, args.workers, parse_cpus(args.cpus, args.workers),
                      args.timeout, args.max_queue)
    pin(pool.cores)  # the front shares the profile's cores, as nginx does in a container
    pool.fork_all()
    logging.getLogger("rightsizer.serving").info(
        "serving %s on 127.0.0.1:%d with %d workers on cores %s", args.model_dir, args.port,
        args.workers, sorted(pool.cores))
    serve(ContainerApp(pool), args.port, lifespan=True)


if __name__ == "__main__":
    main()
