"""The search on slow endpoints: a closed-loop probe, then open-loop steps from its estimate.

Slow endpoints (requests of a second or more). A fixed step sees an overload of ``precision``
only as the backlog it builds: precision x capacity x window answers, which must exceed the
judge's ``KEEP_UP_SLACK`` before the step ends. The capacity is at least the sequential rate,
so when precision x sequential rate x window is below the slack (a 10 s step, 3%: requests of
about 100 ms or more) the fixed-step search can pass rates well above the capacity (+18% at
1 request/s), and ``choose_slow_search`` picks the slow-endpoint path instead:

1. a closed-loop probe (``next_probe``): C = 2, 4, 8, ... concurrent sequential clients, a few
   answers each (C = 1 is the warm-up), until throughput rises by less than ``PROBE_RISE``
   from C/2 to C: then C clients saturate the endpoint's slots, and their throughput is its
   capacity. Saturated, that throughput is the mean of the service times it saw, so its
   relative error is cv / sqrt(n) for n answers, cv being the service times' coefficient of
   variation (the warm-up's sequential latencies measure it): C is held until that error is
   within a quarter of the precision at two standard errors (``probe_successes_needed``), or
   until the probe's time is up (``probe_budget``: ``PROBE_MAX_SECONDS``, at most half of
   ``max_seconds``). Fixed service times need a few answers; variable
   ones as many as the time allows.
2. open-loop steps from that estimate (``SlowEndpointPolicy``): the first at estimate x
   (1 - precision/4), a margin small beside the estimate's own error, with a step length from
   the requests and the latency it needs (``slow_step_plan``) and the judge's rising-latency
   criterion on. Passing closes the bracket at once (the probe stands for a failing step at
   (1 + precision) x that rate). Failing only just (the answers the step's capacity figure
   misses are no more than ``NEAR_MISS`` x the requests in flight, rate x latency by Little's
   law: a window's answers differ from its arrivals by the change in requests in flight, so a
   short step cannot tell more, and the probe knows better), the next step is the highest
   that closes the bracket if it passes, first / (1 + precision); otherwise (a latency
   objective, errors, a clear overload) the search goes on as the step search does.
   An endpoint that became faster since it was probed (a cold start that ended: a passing
   step's median latency below ``LATENCY_DROP`` x the warm-up's) makes the estimate stale:
   the probe then bounds nothing and the search grows from the passing rates as the step
   search does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rightsizer.analysis import KEEP_UP_SLACK
from rightsizer.schema import LoadSettings
from rightsizer.search import Probe, SearchSettings, next_rate
from rightsizer.search_controller import EndSearch, MeasuredStep, StepPlan

PROBE_MAX_SECONDS = 80.0
PROBE_MAX_CLIENTS = 256
PROBE_LEVEL_ANSWERS = 3  # per client at each level: its first (left out) and two more
PROBE_MIN_SUCCESSES = 20  # at saturation, however steady the service times
PROBE_RISE = 0.10  # from C/2 to C clients throughput rises by at least 1/C below saturation
NEAR_MISS = 2.0
LATENCY_DROP = 0.8
SLOW_STEP_WARMUP_LATENCIES = 2.0  # a step's start: the first requests meet the last step's tail
SLOW_STEP_WINDOW_LATENCIES = 4.0
SLOW_STEP_REQUESTS = 40  # requests a judged window should hold ...
SLOW_STEP_MAX_WINDOW_SECONDS = 45.0  # ... unless that would take longer than this


def choose_slow_search(load: LoadSettings, sequential_rps: float) -> bool:
    """True when a fixed step cannot see an overload of ``precision`` (module docstring)."""
    window = load.step_seconds - load.warmup_seconds
    return load.precision * sequential_rps * window < KEEP_UP_SLACK


@dataclass(frozen=True)
class ProbeLevel:
    """What ``clients`` concurrent sequential clients measured."""

    clients: int
    throughput: float  # successful answers per second (analysis.closed_loop_throughput)
    successes: int  # answers counted in ``throughput``
    seconds: float


@dataclass(frozen=True)
class ProbePlan:
    """Run ``clients`` clients until each has ``min_each`` answers and ``min_total`` succeeded."""

    clients: int
    min_each: int
    min_total: int
    max_seconds: float


def probe_saturated(levels: Sequence[ProbeLevel]) -> bool:
    """Doubling the clients no longer raised the throughput: the last level saturates."""
    if len(levels) < 2:
        return False
    before, last = levels[-2], levels[-1]
    return last.throughput < (1 + PROBE_RISE) * before.throughput


def probe_successes_needed(service_cv: float, precision: float) -> int:
    """Answers at saturation for 2 x cv / sqrt(n) <= precision / 4 (module docstring)."""
    return max(PROBE_MIN_SUCCESSES, math.ceil((8 * service_cv / precision) ** 2))


def probe_budget(load: LoadSettings) -> float:
    """Seconds the probe may take: ``PROBE_MAX_SECONDS``, but at most half of ``max_seconds``,
    so that open-loop steps still have the other half to confirm its estimate."""
    return min(PROBE_MAX_SECONDS, load.max_seconds / 2)


def next_probe(
    levels: Sequence[ProbeLevel],
    spent_seconds: float,
    successes_needed: int,
    budget_seconds: float = PROBE_MAX_SECONDS,
) -> ProbePlan | None:
    """The next level of the closed-loop probe, or None when ``probe_estimate`` is ready.

    ``levels`` start with the sequential warm-up (1 client); ``budget_seconds``: the probe's
    time (``probe_budget``)."""
    remaining = budget_seconds - spent_seconds
    last = levels[-1]
    if remaining <= 0:
        return None
    if probe_saturated(levels):
        answers = sum(level.successes for level in levels if level.clients == last.clients)
        if answers >= successes_needed:
            return None
        # min_total counts every success, each client's first (left out) too.
        more = successes_needed - answers + last.clients
        return ProbePlan(last.clients, PROBE_LEVEL_ANSWERS, more, remaining)
    if last.clients >= PROBE_MAX_CLIENTS:
        return None
    return ProbePlan(2 * last.clients, PROBE_LEVEL_ANSWERS, 0, remaining)


def probe_estimate(levels: Sequence[ProbeLevel]) -> float:
    """The saturated throughput: the last client count's levels, weighted by their answers."""
    last = [level for level in levels if level.clients == levels[-1].clients]
    answers = sum(level.successes for level in last)
    if answers == 0:
        return levels[-1].throughput
    return sum(level.throughput * level.successes for level in last) / answers


def slow_step_plan(rate: float, latency_s: float, load: LoadSettings) -> StepPlan:
    """A step as long as its judgement needs: its warm-up and window in latencies, and a
    window of ``SLOW_STEP_REQUESTS`` requests where that takes at most
    ``SLOW_STEP_MAX_WINDOW_SECONDS``; never shorter than the fixed step."""
    warmup = max(load.warmup_seconds, SLOW_STEP_WARMUP_LATENCIES * latency_s)
    window = max(
        load.step_seconds - load.warmup_seconds,
        SLOW_STEP_WINDOW_LATENCIES * latency_s,
        min(SLOW_STEP_REQUESTS / rate, SLOW_STEP_MAX_WINDOW_SECONDS),
    )
    return StepPlan(rate, warmup + window, warmup)


@dataclass(frozen=True)
class SlowEndpointPolicy:
    """The step search from a closed-loop estimate of the capacity (module docstring)."""

    settings: SearchSettings
    estimate: float
    latency_s: float  # a request's latency when not queued (the warm-up's)
    load: LoadSettings

    @classmethod
    def from_estimate(
        cls, load: LoadSettings, estimate: float, latency_s: float
    ) -> SlowEndpointPolicy:
        first = min(estimate * (1 - load.precision / 4), load.max_rps)
        settings = SearchSettings(
            start_rps=first,
            growth_factor=load.growth_factor,
            max_rps=load.max_rps,
            precision=load.precision,
        )
        return cls(settings, estimate, latency_s, load)

    def _near_miss(self, step: MeasuredStep) -> bool:
        plan = step.plan
        window = plan.seconds - plan.warmup_seconds
        missing = (plan.rate - step.outcome.achieved_rps) * window
        in_flight = plan.rate * self.latency_s
        return not step.outcome.result.passed and missing <= NEAR_MISS * in_flight

    def _stale(self, history: Sequence[MeasuredStep]) -> bool:
        """A passing step was much faster than the warm-up: the endpoint changed since."""
        faster = LATENCY_DROP * self.latency_s * 1000
        return any(
            m.outcome.result.passed and (m.outcome.result.p50_ms or math.inf) < faster
            for m in history
        )

    def _probe_marker(self, history: Sequence[MeasuredStep]) -> list[Probe]:
        """The probe as a failing step just above the first rate (none at the rate limit or
        once the probe is stale)."""
        first = self.settings.start_rps
        if first >= self.settings.max_rps or self._stale(history):
            return []
        # Just inside the precision, so that the first step passing closes the bracket.
        above = first * (1 + self.settings.precision) * (1 - 1e-9)
        return [Probe(above, False, self.estimate)]

    def next_step(self, history: Sequence[MeasuredStep]) -> StepPlan | EndSearch:
        first = self.settings.start_rps
        if not history:
            return slow_step_plan(first, self.latency_s, self.load)
        if len(history) == 1 and self._near_miss(history[0]):
            below = first / (1 + self.settings.precision) * (1 + 1e-9)
            return slow_step_plan(below, self.latency_s, self.load)
        probes = self._probe_marker(history) + [measured.probe for measured in history]
        decision = next_rate(probes, self.settings)
        if decision.next_rps is None:
            return EndSearch(decision.stop_reason, "rate-limit" if decision.rate_limited else None)
        return slow_step_plan(decision.next_rps, self.latency_s, self.load)
