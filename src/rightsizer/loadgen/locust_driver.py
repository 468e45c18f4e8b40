"""Locust inside one load-generator process: open-loop steps, warm-up and the legacy ramp.

Imported only in load-generator child processes: Locust monkey-patches with gevent on import.

Open loop: requests leave at scheduled instants (``start + i / rate``), each in its own
greenlet, whether or not earlier ones have been answered, so a slow server cannot slow the
offered load down (no coordinated omission). Every request still goes through Locust's client,
so Locust's statistics and CSVs see it.
"""

from __future__ import annotations

import random
import resource
import statistics
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, cast

import gevent
import gevent.event
from gevent import Greenlet
from gevent.pool import Pool
from locust import FastHttpUser, between, constant, task
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter, stats_history

from rightsizer.loadgen.messages import (
    NO_TOKENS,
    ClosedLoop,
    ClosedLoopDone,
    Command,
    LegacyDone,
    LegacyRamp,
    OfferStep,
    Reply,
    Sample,
    StepDone,
    Stopped,
    WarmedUp,
    WarmUp,
    WorkerConfig,
)
from rightsizer.loadgen.streaming import (
    UNCOMPRESSED,
    container_payloads,
    event_stream_payloads,
    send_streamed,
)
from rightsizer.loadgen.target import HttpTarget, SageMakerTarget
from rightsizer.tokens import count_response_tokens

# Connections one process may hold open at once. At the boundary, requests in flight =
# rate x latency; the pool must not be what limits an open-loop load.
MAX_CONNECTIONS = 2000
# While behind schedule, yield to the event loop every this many sends, so responses
# keep being read.
YIELD_EVERY = 32
# A closed-loop client whose request was refused waits this long before its next one.
REFUSED_PAUSE = 0.1
# The warm-up compares two windows of sequential requests lasting about this long together.
WARM_UP_WINDOW_SECONDS = 20.0


if TYPE_CHECKING:  # gevent's Greenlet is generic in its stubs only
    _Greenlet = Greenlet[..., object]
else:
    _Greenlet = Greenlet


class ScheduledRequest(_Greenlet):
    """One open-loop request's greenlet, knowing when it was due (for the unanswered ones).

    On the greenlet, not in a dict keyed by it: the pool lets go of finished greenlets, so a
    step holds only those in flight (a dict would keep every request of the step alive).
    """

    scheduled: float = 0.0


class InvocationsUser(FastHttpUser):
    """Sends invocations of the endpoint; the subclasses decide when."""

    abstract = True
    driver: Driver

    def invoke(self, index: int, context: dict[str, Any]) -> None:
        driver = self.driver
        payload = driver.payloads[index]
        if payload.stream:
            send_streamed(
                self.client, driver.paths[index], payload.body, driver.headers_for(index),
                context, driver.read_stream,
            )
            return
        self.client.post(
            driver.paths[index],
            data=payload.body,  # type: ignore[arg-type]  # sent as is
            headers=driver.headers_for(index),
            name="invocations",
            context=context,
        )


class OpenLoopUser(InvocationsUser):
    """The single user of open-loop mode. It idles: the driver fires requests on its client."""

    abstract = True
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


class LegacyUser(InvocationsUser):
    """The old notebook's closed-loop user: one request, then a 0.25-0.5 s pause."""

    abstract = True
    concurrency = 1
    wait_time = between(0.25, 0.5)

    @task
    def send(self) -> None:
        self.invoke(self.driver.pick(), {})


def _record(
    response_time: float,
    exception: BaseException | None,
    start_time: float,
    context: dict[str, Any],
    response: Any = None,
    **_: Any,
) -> None:
    """Locust ``request`` listener: append our own sample where the request asked for one.

    A streamed request brings its token figures in ``context`` (``streaming.send_streamed``);
    a whole response's tokens are counted from its body (NaN when it is not generated text).
    """
    sink = context.get("sink")
    if sink is None:
        return
    status = int(getattr(response, "status_code", 0) or 0)
    if exception is None:
        error, tokens = None, _tokens(context, response)
    else:
        error, tokens = _describe(exception, status, response), NO_TOKENS
    sink.append(
        (context["scheduled"], start_time, response_time, exception is None, status, error,
         *tokens)
    )


def _tokens(context: dict[str, Any], response: Any) -> tuple[float, float, bool]:
    if "ttft_ms" in context:
        return context["ttft_ms"], context["output_tokens"], context["tokens_reported"]
    body = getattr(response, "content", None)
    if not isinstance(body, bytes):
        return NO_TOKENS
    return (NO_TOKENS[0], *count_response_tokens(body))


def _describe(exception: BaseException, status: int, response: Any) -> str:
    try:
        body = (response.text or "")[:200] if response is not None else ""
    except Exception:  # an unreadable body must not break the statistics
        body = ""
    # A stream that fails after its HTTP 200 is named by its error, not by that status.
    head = f"HTTP {status}" if status and status != 200 else type(exception).__name__
    return f"{head}: {body or exception}"[:300]


def _settled(ok_latency_ms: list[float]) -> bool:
    """The median of the last n successful latencies is within 10% of the n before them.

    n = 10, or fewer (at least 3) for slow requests, so that the 2n take about
    ``WARM_UP_WINDOW_SECONDS`` rather than minutes."""
    if not ok_latency_ms:
        return False
    typical_s = statistics.median(ok_latency_ms) / 1000
    n = max(3, min(10, int(WARM_UP_WINDOW_SECONDS / (2 * max(typical_s, 1e-6)))))
    if len(ok_latency_ms) < 2 * n:
        return False
    last = statistics.median(ok_latency_ms[-n:])
    before = statistics.median(ok_latency_ms[-2 * n : -n])
    return abs(last - before) <= 0.1 * before


def _enough_answers(per_client: list[list[Sample]], command: ClosedLoop) -> bool:
    """Every client answered ``min_each`` times, and ``min_total`` answers were successes."""
    if any(len(samples) < command.min_each for samples in per_client):
        return False
    return sum(s[3] for samples in per_client for s in samples) >= command.min_total


class Driver:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.payloads = config.payloads
        self.weights = [p.weight for p in config.payloads]
        self.rng = random.Random(config.seed)
        host = self._prepare_requests(config)
        attrs = {
            "abstract": False,
            "host": host,
            "driver": self,
            "network_timeout": config.request_timeout,
            "connection_timeout": config.request_timeout,
        }
        self.open_cls = type(
            "OpenLoopUser", (OpenLoopUser,), {**attrs, "concurrency": MAX_CONNECTIONS}
        )
        self.legacy_cls = type("LegacyUser", (LegacyUser,), attrs)
        self.env = Environment(user_classes=[self.open_cls, self.legacy_cls])
        self.env.events.request.add_listener(_record)  # type: ignore[no-untyped-call]
        self.runner = self.env.create_local_runner()
        self.background: list[Greenlet[..., None]] = [gevent.spawn(stats_history, self.runner)]
        self.csv_writer = None
        if config.csv_base:
            self.csv_writer = StatsCSVFileWriter(
                self.env, PERCENTILES_TO_REPORT, config.csv_base, full_history=True
            )
            self.background.append(gevent.spawn(self.csv_writer.stats_writer))
        self.user = self.open_cls(self.env)

    def _prepare_requests(self, config: WorkerConfig) -> str:
        if isinstance(config.target, SageMakerTarget):
            from rightsizer.loadgen.signing import (
                CachedSigner,
                invocation_path,
                runtime_base_url,
            )

            signer = CachedSigner(config.target, config.payloads)
            # InvokeEndpoint, or InvokeEndpointWithResponseStream for a payload that streams.
            self.paths = [invocation_path(config.target, p.stream) for p in config.payloads]
            self.headers_for = signer.headers
            self.read_stream = event_stream_payloads
            return runtime_base_url(config.target)
        assert isinstance(config.target, HttpTarget)
        plain = [
            {
                "Content-Type": p.content_type,
                "Accept": p.accept or "*/*",
                **(UNCOMPRESSED if p.stream else {}),
            }
            for p in config.payloads
        ]
        self.paths = ["/invocations"] * len(config.payloads)
        self.headers_for = lambda index: plain[index]
        self.read_stream = container_payloads
        return config.target.url

    def pick(self) -> int:
        if len(self.weights) == 1:
            return 0
        return self.rng.choices(range(len(self.weights)), weights=self.weights)[0]

    def wait_for_command(self, conn: Connection) -> Command:
        # Poll rather than block: a blocking recv would freeze Locust's greenlets.
        while not conn.poll(0):
            gevent.sleep(0.01)
        command: Command = conn.recv()
        return command

    def handle(self, command: Command) -> Reply:
        match command:
            case WarmUp(max_seconds):
                return self.warm(max_seconds)
            case OfferStep(rate, start, end, phase, drain):
                return self.step(rate, start, end, phase, drain)
            case ClosedLoop():
                return self.closed_loop(command)
            case LegacyRamp(settings):
                return self.legacy(**settings)
        raise ValueError(f"unknown command {command!r}")

    def warm(self, max_seconds: float) -> WarmedUp:
        """Sequential requests until latency settles, so a cold start is not load-tested.

        Settled: see ``_settled``. Gives up after ``max_seconds``, or after 30 failures in a
        row.
        """
        samples: list[Sample] = []
        deadline = time.time() + max_seconds
        settled = False
        while time.time() < deadline:
            self.user.invoke(self.pick(), {"sink": samples, "scheduled": time.time()})
            if _settled([s[2] for s in samples if s[3]]):
                settled = True
                break
            if len(samples) >= 30 and not any(s[3] for s in samples[-30:]):
                # It never answers successfully, or has stopped (died): no point in waiting.
                break
        return WarmedUp(samples, settled)

    def step(self, rate: float, start: float, end: float, phase: float, drain: float) -> StepDone:
        """Offer ``rate`` requests/s from ``start`` to ``end`` (epoch seconds), open loop."""
        samples: list[Sample] = []
        pool = Pool(greenlet_class=ScheduledRequest)
        interval = 1.0 / rate
        gevent.sleep(max(0.0, start - time.time()))
        cpu_start, wall_start = time.process_time(), time.time()
        i = 0
        while True:
            scheduled = start + (i + phase) * interval
            if scheduled >= end:
                break
            wait = scheduled - time.time()
            if wait > 0:
                gevent.sleep(wait)
            elif i % YIELD_EVERY == 0:
                gevent.sleep(0)
            greenlet = cast(ScheduledRequest, pool.spawn(
                self.user.invoke, self.pick(), {"sink": samples, "scheduled": scheduled}
            ))
            greenlet.scheduled = scheduled
            i += 1
        busy = (time.process_time() - cpu_start) / max(time.time() - wall_start, 1e-6)
        pool.join(timeout=drain)
        # Requests still unanswered after the drain are abandoned so that they cannot
        # spill into the next step; the analysis counts them as unanswered.
        unanswered = [cast(ScheduledRequest, g).scheduled for g in pool]
        pool.kill(block=True, timeout=2)
        return StepDone(samples, unanswered, i, busy)

    def closed_loop(self, command: ClosedLoop) -> ClosedLoopDone:
        """``command.clients`` sequential clients at once, each sending when answered.

        A refused request (an error) comes back at once: its client waits ``REFUSED_PAUSE``
        before the next, so that a full queue is not hammered; the clients that are being
        served keep the endpoint busy meanwhile."""
        per_client: list[list[Sample]] = [[] for _ in range(command.clients)]
        stop = gevent.event.Event()
        began = time.time()

        def client(samples: list[Sample]) -> None:
            while not stop.is_set():
                self.user.invoke(self.pick(), {"sink": samples, "scheduled": time.time()})
                if samples and not samples[-1][3]:
                    stop.wait(REFUSED_PAUSE)

        clients = [gevent.spawn(client, samples) for samples in per_client]
        deadline = began + command.max_seconds
        while time.time() < deadline and not _enough_answers(per_client, command):
            gevent.sleep(0.02)
        stop.set()
        gevent.joinall(clients, timeout=command.drain)
        gevent.killall(clients, block=True, timeout=2)
        return ClosedLoopDone(per_client, time.time() - began)

    def legacy(
        self,
        max_users: int,
        spawn_rate: float,
        failure_ratio: float,
        max_seconds: float,
    ) -> LegacyDone:
        """The old notebook's method: ramp closed-loop users linearly, stop when the
        *cumulative* failure ratio exceeds the threshold, report Locust's moving-average
        rate at that moment (failed requests included)."""
        self.env.stats.reset_all()
        started = time.time()
        self.runner.start(max_users, spawn_rate, user_classes=[self.legacy_cls])
        stopped_by = "time limit"
        history: list[tuple[float, float, float, int]] = []
        while time.time() - started < max_seconds:
            gevent.sleep(1)
            total = self.env.stats.total
            history.append(
                (time.time() - started, total.current_rps, total.fail_ratio, self.runner.user_count)
            )
            if total.num_requests and total.fail_ratio > failure_ratio:
                stopped_by = "cumulative failure ratio"
                break
            if (
                self.runner.user_count >= max_users
                and time.time() - started > max_users / spawn_rate + 10
            ):
                stopped_by = "all users running"
                break
        reported = self.env.stats.total.current_rps
        self.runner.stop()
        return LegacyDone(
            reported_rps=reported,
            seconds=time.time() - started,
            stopped_by=stopped_by,
            history=history,
            requests=self.env.stats.total.num_requests,
            failures=self.env.stats.total.num_failures,
        )

    def close(self) -> Stopped:
        self.runner.quit()
        if self.csv_writer is not None:
            gevent.sleep(1.2)  # one more pass of Locust's CSV writer, then close its files
        gevent.killall(self.background, block=False)
        if self.csv_writer is not None:
            self.csv_writer.close_files()
        return Stopped(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
