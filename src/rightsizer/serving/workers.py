"""The container's model workers: one process per core, one inference at a time, fed a request
at a time by the front process (the way SageMaker's multi-model server and TorchServe work).

Dispatching each request to whichever worker is idle makes N workers serve like N cores,
whatever the clients' connections do. (A pre-fork server whose workers own keep-alive
connections does not: measured under gunicorn's gthread workers, one worker took all 8
connections of a load test and local.2cpu served no more than local.1cpu.)

Workers are forked from the front after the model is loaded, so they share its memory. A
worker that overruns the request timeout is killed and replaced (the client gets 504); one that
dies mid-request is replaced too (500).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import time
import traceback
from dataclasses import dataclass
from typing import NoReturn

from rightsizer.serving.asgi import Reply, error_reply, reply
from rightsizer.serving.handler import Handler
from rightsizer.serving.process import core_for, pin

# Front -> worker: meta length, body length, then JSON meta and the body.
REQUEST = struct.Struct("!II")
# Worker -> front: status, content-type length, body length, then both.
RESPONSE = struct.Struct("!HII")
STOP_WAIT_S = 2.0
log = logging.getLogger("rightsizer.serving")


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None when the front has closed the connection."""
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def worker_main(sock: socket.socket, handler: Handler, core: int) -> NoReturn:
    """A forked worker's whole life: serve requests from ``sock`` until it closes."""
    code = 0
    try:
        # Undo the front's signal set-up: the default SIGTERM ends a worker at once.
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        pin({core})
        log.info("worker %d serves on core %d", os.getpid(), core)
        while (head := _recv_exactly(sock, REQUEST.size)) is not None:
            meta_len, body_len = REQUEST.unpack(head)
            meta = json.loads(_recv_exactly(sock, meta_len) or b"{}")
            body = _recv_exactly(sock, body_len) or b""
            response = handler.invoke(body, meta.get("content_type"), meta.get("accept"))
            ctype = response.content_type.encode("latin-1", "replace")
            sock.sendall(RESPONSE.pack(response.status, len(ctype), len(response.body))
                         + ctype + response.body)
    except BaseException:  # user code may even raise SystemExit; the front answers 500
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)  # never return into the front's event loop


@dataclass
class Worker:
    slot: int
    core: int
    pid: int
    sock: socket.socket  # the front's end
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


class WorkerPool:
    """Forks the workers, hands each request to an idle one, replaces the ones that fail."""

    def __init__(self, handler: Handler, workers: int, cpus: list[int], timeout_s: float,
                 max_queue: int) -> None:
        self.handler = handler
        self.size = workers
        self.cpus = cpus
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self.workers: dict[int, Worker] = {}  # by slot
        self.idle: asyncio.Queue[Worker] | None = None
        self.waiting = 0
        self.closing = False

    @property
    def cores(self) -> set[int]:
        return {core_for(slot, self.cpus) for slot in range(self.size)}

    def fork_all(self) -> None:
        """Before the event loop starts, so the first workers inherit no server sockets."""
        for slot in range(self.size):
            self._fork(slot)

    async def start(self) -> None:
        self.idle = asyncio.Queue()
        for worker in self.workers.values():
            await self._connect(worker)

    async def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Reply:
        assert self.idle is not None, "start() first"
        if self.idle.empty() and self.waiting >= self.max_queue:
            return error_reply(503, f"all {self.size} workers are busy and {self.waiting} "
                                    "requests are waiting: the queue is full")
        self.waiting += 1
        try:
            worker = await self.idle.get()  # first come, first served
        finally:
            self.waiting -= 1
        assert worker.reader is not None and worker.writer is not None
        meta = json.dumps({"content_type": content_type, "accept": accept}).encode()
        try:
            worker.writer.write(REQUEST.pack(len(meta), len(body)) + meta)
            worker.writer.write(body)
            status, ctype, out = await asyncio.wait_for(
                self._read_response(worker.reader), self.timeout_s)
        except TimeoutError:
            await self._replace(worker)
            return error_reply(504, f"the request ran past the {self.timeout_s:g} s model "
                                    "server timeout; the worker was restarted")
        except (asyncio.IncompleteReadError, OSError):
            how = await self._replace(worker)
            return error_reply(500, f"the worker process died ({how}) while serving this "
                                    "request; the server log has its output")
        except BaseException:  # cancelled mid-request: the worker's state is unknown
            await self._replace(worker)
            raise
        self.idle.put_nowait(worker)
        return reply(status, out, ctype)

    async def stop(self) -> None:
        """Close every worker's connection (they exit on EOF); kill the ones that linger."""
        self.closing = True
        for worker in self.workers.values():
            if worker.writer is not None:
                worker.writer.close()
            worker.sock.close()
        deadline = time.monotonic() + STOP_WAIT_S
        while self.workers and time.monotonic() < deadline:
            for slot, worker in list(self.workers.items()):
                try:
                    exited = os.waitpid(worker.pid, os.WNOHANG)[0] != 0
                except ChildProcessError:  # reaped already
                    exited = True
                if exited:
                    del self.workers[slot]
            await asyncio.sleep(0.02)
        for worker in self.workers.values():
            self._kill(worker)

    # --- internals ------------------------------------------------------------------------------

    def _fork(self, slot: int) -> Worker:
        front, back = socket.socketpair()
        core = core_for(slot, self.cpus)
        pid = os.fork()
        if pid == 0:
            # The child keeps only its own end: a sibling holding our ends open would keep
            # that worker from seeing EOF when the front goes away.
            front.close()
            for other in self.workers.values():
                with contextlib.suppress(OSError):
                    other.sock.close()
            worker_main(back, self.handler, core)
        back.close()
        worker = Worker(slot, core, pid, front)
        self.workers[slot] = worker
        return worker

    async def _connect(self, worker: Worker) -> None:
        assert self.idle is not None
        worker.reader, worker.writer = await asyncio.open_connection(sock=worker.sock)
        self.idle.put_nowait(worker)

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        status, ctype_len, body_len = RESPONSE.unpack(await reader.readexactly(RESPONSE.size))
        ctype = (await reader.readexactly(ctype_len)).decode("latin-1")
        return status, ctype, await reader.readexactly(body_len)

    def _kill(self, worker: Worker) -> str:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)
        if worker.writer is not None:
            worker.writer.close()
        worker.sock.close()
        try:
            return _describe(os.waitpid(worker.pid, 0)[1])  # at once: it is dead or killed
        except ChildProcessError:
            return "already reaped"

    async def _replace(self, worker: Worker) -> str:
        how = self._kill(worker)
        log.warning("worker %d on core %d stopped (%s); %s", worker.pid, worker.core, how,
                    "shutting down" if self.closing else "starting a new one")
        if not self.closing:
            await self._connect(self._fork(worker.slot))
        return how
