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

The slow-endpoint path (a closed-loop probe, then ``SlowEndpointPolicy``) is in ``slow_search``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

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
