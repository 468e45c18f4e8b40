"""The load search's decisions, apart from the load: what to offer next, when to stop, what to
report. Pure: no sockets, no processes; time comes from an injected clock.

Three parts, as Locust keeps its ``LoadTestShape`` apart from its runners and Vegeta's attacker
only asks its ``Pacer``:

- a ``Policy`` says what the next step is (a ``StepPlan``) or that the search is over
  (``EndSearch``), from the steps measured so far. ``StepSearchPolicy`` is the open-loop step
  search of ``search.py`` with fixed-length steps; ``SlowEndpointPolicy`` is the same search
  started from a closed-loop estimate, with steps as long as their requests need.
- a ``StepRunner`` carries one plan out and reports it judged (a ``StepOutcome``): the engine's
  runs it on the Locust workers; tests use a simulated endpoint.
- the ``SearchController`` owns what every policy shares: the ``max_steps``/``max_seconds``
  bounds, interrupts (``should_stop``), the endpoint's health after every step, the stop when
  the load generator could not offer the load, the cool-down after an overload, and the
  report (``SearchReport.apply_to`` fills the summary).

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
   until ``PROBE_MAX_SECONDS`` of probing. Fixed service times need a few answers; variable
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rightsizer.analysis import KEEP_UP_SLACK
from rightsizer.schema import LoadSettings
from rightsizer.search import Probe, SearchSettings, best_rate, next_rate
from rightsizer.summary import Bottleneck, StepResult, TypeSummary

# After a failing step the server may still be working through abandoned requests.
MAX_COOL_DOWN_SECONDS = 30.0

Progress = Callable[[str], None]
# Why the search must end now (interrupted, the endpoint is gone), or None to go on.
StopCheck = Callable[[], str | None]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class StepPlan:
    """Offer ``rate`` requests/s for ``seconds``; judge all but the first ``warmup_seconds``."""

    rate: float
    seconds: float
    warmup_seconds: float


@dataclass(frozen=True)
class StepOutcome:
    """One step as the runner measured and judged it."""

    result: StepResult  # as summary.json shows it: figures, passed, reasons
    achieved_rps: float  # successful answers per second, unrounded: the capacity estimate
    generator_limited: bool  # the load generator, not the endpoint, fell short
    unanswered: int  # requests abandoned when the step ended


@dataclass(frozen=True)
class MeasuredStep:
    plan: StepPlan
    outcome: StepOutcome

    @property
    def probe(self) -> Probe:
        return Probe(self.plan.rate, self.outcome.result.passed, self.outcome.achieved_rps)


@dataclass(frozen=True)
class EndSearch:
    """The policy's word that the search is over."""

    reason: str
    bottleneck: Bottleneck | None = None  # what limited the answer, if not the endpoint


class Policy(Protocol):
    def next_step(self, history: Sequence[MeasuredStep]) -> StepPlan | EndSearch: ...


class StepRunner(Protocol):
    def run_step(self, plan: StepPlan) -> StepOutcome: ...


def auto_start_rps(load: LoadSettings, sequential_rps: float) -> float:
    """Half the rate one sequential client reaches: surely sustainable, and not far below."""
    if load.start_rps is not None:
        return load.start_rps
    return min(max(1.0, round(sequential_rps / 2, 1)), load.max_rps)


@dataclass(frozen=True)
class StepSearchPolicy:
    """Fixed-length steps at the rates ``search.next_rate`` picks: grow, bracket, narrow."""

    settings: SearchSettings
    step_seconds: float
    warmup_seconds: float

    @classmethod
    def from_load(cls, load: LoadSettings, sequential_rps: float) -> StepSearchPolicy:
        settings = SearchSettings(
            start_rps=auto_start_rps(load, sequential_rps),
            growth_factor=load.growth_factor,
            max_rps=load.max_rps,
            precision=load.precision,
        )
        return cls(settings, load.step_seconds, load.warmup_seconds)

    def next_step(self, history: Sequence[MeasuredStep]) -> StepPlan | EndSearch:
        decision = next_rate([measured.probe for measured in history], self.settings)
        if decision.next_rps is None:
            return EndSearch(decision.stop_reason, "rate-limit" if decision.rate_limited else None)
        return StepPlan(decision.next_rps, self.step_seconds, self.warmup_seconds)


# The slow-endpoint path (module docstring).
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


def next_probe(
    levels: Sequence[ProbeLevel], spent_seconds: float, successes_needed: int
) -> ProbePlan | None:
    """The next level of the closed-loop probe, or None when ``probe_estimate`` is ready.

    ``levels`` start with the sequential warm-up (1 client)."""
    remaining = PROBE_MAX_SECONDS - spent_seconds
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


@dataclass(frozen=True)
class Bounds:
    max_steps: int
    max_seconds: float  # no step starts that would end past this much load time

    @classmethod
    def from_load(cls, load: LoadSettings) -> Bounds:
        return cls(load.max_steps, load.max_seconds)


@dataclass(frozen=True)
class SearchReport:
    steps: list[StepResult]
    max_sustainable_rps: float
    bottleneck: Bottleneck
    load_seconds: float
    notes: list[str]
    stopped_by: str | None  # interrupted or the endpoint died: the type failed with this

    def apply_to(self, summary: TypeSummary) -> None:
        """Fill the search's part of ``summary``: steps, answer, status, notes."""
        summary.steps.extend(self.steps)
        summary.notes.extend(self.notes)
        summary.load_seconds = round(self.load_seconds, 1)
        summary.max_sustainable_rps = round(self.max_sustainable_rps, 3)
        summary.bottleneck = self.bottleneck
        failure = self.stopped_by or self._nothing_passed()
        if failure:
            summary.status, summary.failed_stage, summary.reason = "failed", "load_test", failure
        best = best_step(self.steps)
        if best is not None:
            summary.p50_ms, summary.p95_ms, summary.p99_ms = best.p50_ms, best.p95_ms, best.p99_ms
            summary.tokens = best.tokens

    def _nothing_passed(self) -> str | None:
        if best_step(self.steps) is not None:
            return None
        if not self.steps:
            return "no step could be run within the bounds"
        first = self.steps[0]
        return f"no step met the objective, not even {first.target_rps:g} rps: " + "; ".join(
            first.reasons
        )


def best_step(steps: Sequence[StepResult]) -> StepResult | None:
    return max((s for s in steps if s.passed), key=lambda s: s.target_rps, default=None)


def describe_step(number: int, step: StepResult) -> str:
    verdict = "passed" if step.passed else "FAILED: " + "; ".join(step.reasons[:2])
    p99 = f"{step.p99_ms:.0f} ms" if step.p99_ms is not None else "n/a"
    return (
        f"step {number}: {step.target_rps:.1f} rps -> achieved {step.achieved_rps:.1f} rps, "
        f"failures {step.failure_rate:.2%}, p99 {p99}: {verdict}"
    )


def _never() -> str | None:
    return None


def _silent(_message: str) -> None:
    pass


class SearchController:
    """Runs one search: asks the policy, has the runner run each step, decides when to stop."""

    def __init__(
        self,
        policy: Policy,
        runner: StepRunner,
        bounds: Bounds,
        *,
        clock: Clock | None = None,
        progress: Progress | None = None,
        should_stop: StopCheck | None = None,
        target_health: StopCheck | None = None,
    ) -> None:
        self._policy, self._runner, self._bounds = policy, runner, bounds
        self._clock = clock or SystemClock()
        self._say = progress or _silent
        self._should_stop = should_stop or _never
        self._health = target_health or _never
        self._history: list[MeasuredStep] = []
        self._notes: list[str] = []
        self._bottleneck: Bottleneck = "endpoint"

    def run(self) -> SearchReport:
        began = self._clock.monotonic()
        stopped_by = self._steps_until_done(began)
        # Asked once more: an interrupt that came as the search ended still marks the type.
        stopped_by = stopped_by or self._should_stop()
        return SearchReport(
            steps=[measured.outcome.result for measured in self._history],
            max_sustainable_rps=best_rate([measured.probe for measured in self._history]),
            bottleneck=self._bottleneck,
            load_seconds=self._clock.monotonic() - began,
            notes=self._notes,
            stopped_by=stopped_by,
        )

    def _steps_until_done(self, began: float) -> str | None:
        """Run steps until the search is over; why it must fail the type, or None."""
        while not (stopped_by := self._should_stop()):
            plan = self._next_plan(began)
            if plan is None:
                return None
            number = len(self._history) + 1
            self._say(f"step {number}: offering {plan.rate:.1f} rps for {plan.seconds:g} s")
            outcome = self._runner.run_step(plan)
            self._history.append(MeasuredStep(plan, outcome))
            stopped_by = self._stop_after_step(number, plan, outcome.result)
            self._say(describe_step(number, outcome.result))
            if stopped_by:
                return stopped_by
            if outcome.generator_limited:
                self._blame_the_generator(plan)
                return None
            self._cool_down(outcome)
        return stopped_by

    def _next_plan(self, began: float) -> StepPlan | None:
        """The policy's next step, unless it or a bound ends the search (noted)."""
        decision = self._policy.next_step(self._history)
        if isinstance(decision, EndSearch):
            self._notes.append(f"search stopped: {decision.reason}")
            self._bottleneck = decision.bottleneck or self._bottleneck
            return None
        if len(self._history) >= self._bounds.max_steps:
            self._notes.append(
                f"search stopped at the step bound max_steps={self._bounds.max_steps}"
            )
            return None
        elapsed = self._clock.monotonic() - began
        if elapsed + decision.seconds > self._bounds.max_seconds:
            self._notes.append(
                f"search stopped at the time bound max_seconds={self._bounds.max_seconds:g}"
            )
            return None
        return decision

    def _stop_after_step(self, number: int, plan: StepPlan, step: StepResult) -> str | None:
        """Interrupted, or the endpoint died during this step: why, else None."""
        # Interrupted (Ctrl-C stops the endpoint too): say so rather than "it died".
        interrupted = self._should_stop()
        if interrupted:
            return interrupted
        gone = self._health()
        if not gone:
            return None
        if not step.passed:
            step.reasons.append("the endpoint died during this step")
        self._notes.append(
            f"search stopped after step {number}: the endpoint died; the steps before it are "
            "kept, but they are not a capacity"
        )
        return f"the endpoint died during step {number} ({plan.rate:.1f} rps): {gone}"

    def _blame_the_generator(self, plan: StepPlan) -> None:
        self._bottleneck = "load-generator"
        self._notes.append(
            f"the load generator could not offer {plan.rate:.1f} rps; the endpoint's capacity "
            "is at least the reported rate: use more load-generator processes (load.processes)"
        )

    def _cool_down(self, outcome: StepOutcome) -> None:
        """After an overload, let the server work off the requests it was abandoned with."""
        step = outcome.result
        if not step.passed and outcome.unanswered:
            backlog_seconds = outcome.unanswered / max(step.achieved_rps, 1)
            self._clock.sleep(min(MAX_COOL_DOWN_SECONDS, backlog_seconds))
