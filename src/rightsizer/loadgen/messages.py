"""What the controlling process and a load-generator process say to each other over their pipe.

Plain frozen dataclasses (pickled by ``multiprocessing``), one type per command and per reply,
so both sides dispatch on the type and a missing or misspelt field fails where it is made.
Importable on both sides: it must never import Locust or gevent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from rightsizer.loadgen.target import Target
from rightsizer.payloads import LoadedPayload

Sample = tuple[float, float, float, bool, int, str | None, float, float, bool]
"""(scheduled, started, latency_ms, ok, http_status, error, ttft_ms, output_tokens,
tokens_reported) of one request. ``ttft_ms``: time to the first streamed token, NaN when the
response was not streamed. ``output_tokens``: tokens in the response, NaN when it has none
(not text); ``tokens_reported``: counted from the container's own figures (TGI/LMI
``details``, one event per token) rather than approximated from the text."""

NO_TOKENS: tuple[float, float, bool] = (float("nan"), float("nan"), False)
"""The token fields of a sample whose response was neither streamed nor read for tokens."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a load-generator process needs to start (sent once, as its argument)."""

    target: Target
    payloads: list[LoadedPayload]
    request_timeout: float
    csv_base: str | None  # Locust's CSVs: <csv_base>_stats.csv, _stats_history.csv, ...
    seed: int = 0


# Commands: parent -> worker.


@dataclass(frozen=True)
class WarmUp:
    """Sequential requests until latency settles, for at most ``max_seconds``."""

    max_seconds: float


@dataclass(frozen=True)
class OfferStep:
    """Offer ``rate`` requests/s open loop from ``start`` to ``end`` (epoch seconds)."""

    rate: float
    start: float
    end: float
    phase: float  # this worker's share of one interval, so that N workers interleave
    drain: float  # seconds to wait for answers after ``end`` before abandoning them


@dataclass(frozen=True)
class ClosedLoop:
    """``clients`` concurrent sequential clients (each sends as soon as its last answer came).

    Runs until every client has ``min_each`` and all together ``min_total`` answers, or
    ``max_seconds`` have passed; then no client sends again and the ones in flight are
    awaited (for at most ``drain`` seconds), so the endpoint is idle when it ends."""

    clients: int
    min_each: int
    min_total: int
    max_seconds: float
    drain: float


class LegacySettings(TypedDict):
    """The old notebook's closed-loop ramp (also the keyword arguments of ``Driver.legacy``)."""

    max_users: int
    spawn_rate: float
    failure_ratio: float
    max_seconds: float


@dataclass(frozen=True)
class LegacyRamp:
    settings: LegacySettings


@dataclass(frozen=True)
class Shutdown:
    """Stop Locust, flush its CSVs and exit."""


Command = WarmUp | OfferStep | ClosedLoop | LegacyRamp | Shutdown


# Replies: worker -> parent.


@dataclass(frozen=True)
class Ready:
    """Locust is set up; the worker waits for commands."""


@dataclass(frozen=True)
class Failed:
    """The worker could not start, or could not carry out a command."""

    error: str
    trace: str = ""


@dataclass(frozen=True)
class WarmedUp:
    samples: list[Sample]
    settled: bool


@dataclass(frozen=True)
class StepDone:
    samples: list[Sample]
    unanswered: list[float]  # scheduled times of requests abandoned after the drain
    sent: int
    cpu: float  # share of one core the worker used while sending


@dataclass(frozen=True)
class ClosedLoopDone:
    samples: list[list[Sample]]  # per client, in the order it sent them
    seconds: float  # from the first send to the last answer


@dataclass(frozen=True)
class LegacyDone:
    reported_rps: float  # Locust's moving average when the ramp stopped, failures included
    seconds: float
    stopped_by: str
    history: list[tuple[float, float, float, int]]  # (elapsed, rps, fail ratio, users)
    requests: int
    failures: int


@dataclass(frozen=True)
class Stopped:
    peak_rss_kb: int


Reply = Ready | Failed | WarmedUp | StepDone | ClosedLoopDone | LegacyDone | Stopped
