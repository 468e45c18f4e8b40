"""The load generator as seen from the controlling process: N worker processes, in lockstep.

Each worker offers ``rate / N`` with its arrivals phase-shifted, so together they offer an
evenly spaced stream at ``rate``. The parent never imports Locust or gevent.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from rightsizer.loadgen.messages import (
    ClosedLoop,
    ClosedLoopDone,
    Command,
    Failed,
    LegacyDone,
    LegacyRamp,
    LegacySettings,
    OfferStep,
    Ready,
    Reply,
    Shutdown,
    StepDone,
    Stopped,
    WarmedUp,
    WarmUp,
    WorkerConfig,
)
from rightsizer.loadgen.target import Target
from rightsizer.loadgen.worker import worker_main
from rightsizer.payloads import LoadedPayload

SAMPLE_COLUMNS = [
    "scheduled", "started", "latency_ms", "ok", "status", "error",
    "ttft_ms", "output_tokens", "tokens_reported",
]
# Workers start a step together this long after the command, so that all are ready.
START_DELAY_SECONDS = 0.3

ReplyT = TypeVar("ReplyT", bound=Reply)


log = logging.getLogger(__name__)


class LoadGeneratorError(RuntimeError):
    """The load generator itself failed (not the endpoint)."""


@dataclass
class StepSamples:
    """Raw outcome of one step, all workers merged."""

    target_rps: float
    start: float
    end: float
    requests: pd.DataFrame  # one row per answered request, SAMPLE_COLUMNS
    unanswered: np.ndarray  # scheduled times of requests abandoned after the drain
    sent: int
    worker_cpu: list[float]  # share of one core each worker used while sending


@dataclass
class ClosedLoopResult:
    """Raw outcome of a closed-loop run: each client's requests in the order it sent them."""

    clients: int
    per_client: list[pd.DataFrame]  # SAMPLE_COLUMNS
    seconds: float


class LoadGenerator:
    """Context manager owning the worker processes."""

    def __init__(
        self,
        target: Target,
        payloads: list[LoadedPayload],
        *,
        processes: int = 1,
        request_timeout: float = 60.0,
        csv_dir: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.processes = processes
        self.request_timeout = request_timeout
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        try:
            for index in range(processes):
                csv_base = None
                if csv_dir is not None:
                    suffix = "" if processes == 1 else f"_{index}"
                    csv_base = str(csv_dir / f"locust{suffix}")
                config = WorkerConfig(target, payloads, request_timeout, csv_base, seed=index)
                parent, child = context.Pipe()
                proc = context.Process(
                    target=worker_main, args=(child, config), name=f"loadgen-{index}", daemon=True
                )
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            self._gather(start_timeout, Ready)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _gather(self, timeout: float, expected: type[ReplyT]) -> list[ReplyT]:
        deadline = time.time() + timeout
        return [
            self._gather_one(i, deadline - time.time(), expected) for i in range(len(self._conns))
        ]

    def warm(self, max_seconds: float) -> tuple[pd.DataFrame, bool]:
        """Sequential requests from one worker until latency settles (absorbs cold starts)."""
        self._send(0, WarmUp(max_seconds))
        reply = self._gather_one(0, max_seconds + self.request_timeout + 30, WarmedUp)
        return pd.DataFrame(reply.samples, columns=SAMPLE_COLUMNS), reply.settled

    def _send(self, index: int, command: Command) -> None:
        self._conns[index].send(command)

    def _gather_one(self, index: int, timeout: float, expected: type[ReplyT]) -> ReplyT:
        conn, proc = self._conns[index], self._procs[index]
        deadline = time.time() + timeout
        while not conn.poll(0.2):
            if not proc.is_alive():
                raise LoadGeneratorError(f"{proc.name} exited with code {proc.exitcode}")
            if time.time() > deadline:
                raise LoadGeneratorError(f"{proc.name} did not answer within {timeout:.0f} s")
        reply: Reply = conn.recv()
        if isinstance(reply, Failed):
            # The worker's own traceback goes to the log; the error says what failed.
            log.error("%s failed: %s\n%s", proc.name, reply.error, reply.trace)
            raise LoadGeneratorError(reply.error)
        if not isinstance(reply, expected):
            raise LoadGeneratorError(
                f"{proc.name} answered {type(reply).__name__}, not {expected.__name__}"
            )
        return reply

    def step(self, rate: float, seconds: float, drain: float) -> StepSamples:
        start = time.time() + START_DELAY_SECONDS
        end = start + seconds
        n = self.processes
        for index in range(n):
            self._send(index, OfferStep(rate / n, start, end, phase=index / n, drain=drain))
        replies = self._gather(seconds + drain + START_DELAY_SECONDS + 30, StepDone)
        rows = [row for reply in replies for row in reply.samples]
        return StepSamples(
            target_rps=rate,
            start=start,
            end=end,
            requests=pd.DataFrame(rows, columns=SAMPLE_COLUMNS),
            unanswered=np.array([t for r in replies for t in r.unanswered], dtype=float),
            sent=sum(r.sent for r in replies),
            worker_cpu=[r.cpu for r in replies],
        )

    def closed_loop(self, command: ClosedLoop) -> ClosedLoopResult:
        """Concurrent sequential clients, all on the first worker (a slow endpoint's few
        clients need no more); one frame of samples per client."""
        self._send(0, command)
        timeout = command.max_seconds + command.drain + 30
        reply = self._gather_one(0, timeout, ClosedLoopDone)
        frames = [pd.DataFrame(samples, columns=SAMPLE_COLUMNS) for samples in reply.samples]
        return ClosedLoopResult(command.clients, frames, reply.seconds)

    def legacy(self, settings: LegacySettings) -> LegacyDone:
        """The old notebook's ramp, on the first worker only (as the notebook ran it)."""
        self._send(0, LegacyRamp(settings))
        return self._gather_one(0, settings["max_seconds"] + 60, LegacyDone)

    def close(self) -> dict[str, int]:
        """Stop every worker; always safe to call, also after a failure.

        Returns ``{"peak_rss_kb": ...}``, the busiest worker's peak memory (the throughput
        benchmark reads it)."""
        peak_rss_kb = 0
        for conn, proc in zip(self._conns, self._procs, strict=False):
            try:
                if proc.is_alive():
                    conn.send(Shutdown())
                    if conn.poll(10) and isinstance(reply := conn.recv(), Stopped):
                        peak_rss_kb = max(peak_rss_kb, reply.peak_rss_kb)
            except (OSError, EOFError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
        return {"peak_rss_kb": peak_rss_kb}
