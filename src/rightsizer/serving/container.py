"""Host a user's ``inference.py`` the way SageMaker's framework containers do, under gunicorn.

One pre-forked ``gthread`` worker per CPU of the profile, one thread each (a worker serves one
inference at a time, like a real core; gthread keeps connections alive between requests), each
worker pinned to its own core. The model is loaded once in the master before the server binds,
so ``/ping`` answering means the model is ready, and a failing ``model_fn`` stops the process
with its traceback on stderr.

    python -m rightsizer.serving.container --model-dir DIR --port P --workers N --cpus 0,1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from rightsizer.serving.handler import Handler
from rightsizer.serving.process import (
    HOST,
    core_for,
    exit_if_port_taken,
    exit_with_parent,
    limit_native_threads,
    parse_cpus,
    pin,
)
from rightsizer.serving.wsgi import StartResponse, WSGIApp, make_app

log = logging.getLogger("rightsizer.serving")
EXIT_MODEL_LOAD_FAILED = 3


class RequestDeadline:
    """Answer 504 and restart the worker when a request runs past the timeout.

    gunicorn's own ``timeout`` cannot do this for gthread workers: their main loop keeps
    beating while the request thread is stuck. Restarting is cheap: workers fork from the
    master, which already holds the model.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._current: tuple[float, socket.socket | None] | None = None

    def wrap(self, app: WSGIApp) -> WSGIApp:
        def timed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            self._current = (time.monotonic(), environ.get("gunicorn.socket"))
            try:
                return app(environ, start_response)
            finally:
                self._current = None

        return timed

    def start_watching(self) -> None:
        threading.Thread(target=self._watch, name="request-deadline", daemon=True).start()

    def _watch(self) -> None:
        interval = min(1.0, self.timeout_s / 4)
        while True:
            time.sleep(interval)
            current = self._current
            if current and time.monotonic() - current[0] > self.timeout_s:
                self._expire(current[1])

    def _expire(self, sock: socket.socket | None) -> None:
        message = f"the request ran past the {self.timeout_s:g} s model server timeout"
        body = json.dumps({"error": message, "status": 504}).encode()
        head = (
            "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        if sock is not None:
            with contextlib.suppress(OSError):  # the client may be gone already
                sock.sendall(head + body)
        log.error("%s: answered 504, restarting worker %d", message, os.getpid())
        logging.shutdown()
        os._exit(1)


class ContainerServer(BaseApplication):  # type: ignore[misc]
    """gunicorn embedded as a library (its documented ``BaseApplication`` way)."""

    def __init__(self, app: WSGIApp, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            # Settings newer than the installed gunicorn are skipped, not fatal.
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        return self.application


def gunicorn_options(
    port: int, workers: int, cpus: list[int], deadline: RequestDeadline
) -> dict[str, Any]:
    def pre_fork(server: Any, worker: Any) -> None:
        # In the master: give the new worker the lowest slot no live worker holds, so a
        # restarted worker takes over its predecessor's core.
        taken = {getattr(w, "rightsizer_slot", None) for w in server.WORKERS.values()}
        worker.rightsizer_slot = next(i for i in range(len(taken) + 1) if i not in taken)

    def post_fork(server: Any, worker: Any) -> None:
        core = core_for(worker.rightsizer_slot, cpus)
        pin({core})
        server.log.info("worker %d serves on core %d", os.getpid(), core)

    def post_worker_init(worker: Any) -> None:
        deadline.start_watching()

    return {
        "bind": f"{HOST}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 1,
        "worker_connections": 1000,
        "backlog": 4096,
        # gunicorn's heartbeat timeout only catches a wedged worker loop; RequestDeadline
        # enforces the request timeout itself.
        "timeout": int(deadline.timeout_s) + 30,
        "graceful_timeout": 3,
        "keepalive": 75,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": f"rightsizer-container:{port}",
        # gunicorn >= 25 opens a control socket at a fixed path; parallel servers would clash.
        "control_socket_disable": True,
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rightsizer.serving.container",
        description="Serve a model folder's inference.py on SageMaker's container contract.",
    )
    parser.add_argument("--model-dir", required=True, type=Path,
                        help="folder with inference.py (and the model files it loads)")
    parser.add_argument("--port", type=int, default=int(os.environ.get(
        "SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=1, help="one per CPU of the profile")
    parser.add_argument("--cpus", help="cores to pin workers to, e.g. 0,1 or 0-3 "
                        "(default: 0..workers-1; folded onto the cores available)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one request may run before it is answered 504")
    parser.add_argument("--parent-pid", type=int,
                        help="exit when this process (the launcher) is gone")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.timeout <= 0:
        parser.error("--workers must be at least 1 and --timeout above 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    limit_native_threads()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [%(process)d] [%(levelname)s] %(message)s")
    exit_if_port_taken(args.port)
    exit_with_parent(args.parent_pid)
    cpus = parse_cpus(args.cpus, args.workers)
    try:
        handler = Handler(args.model_dir)
    except Exception:
        # The launcher shows this tail as the reason the endpoint failed to deploy.
        print(f"loading the model from {args.model_dir} failed:\n{traceback.format_exc()}",
              file=sys.stderr, flush=True)
        sys.exit(EXIT_MODEL_LOAD_FAILED)
    deadline = RequestDeadline(args.timeout)
    app = deadline.wrap(make_app(handler))
    ContainerServer(app, gunicorn_options(args.port, args.workers, cpus, deadline)).run()


if __name__ == "__main__":
    main()
