"""The load engine: find one endpoint's maximum sustainable request rate.

warm-up (sequential requests until latency settles) -> steps of open-loop load -> ``summary.json``
beside Locust's CSVs. Every decision of the search (what to offer next, when to stop, what to
report) is in ``search_controller``, which never touches the load; this module only wires it to
the load generator: ``GeneratorRunner`` runs each planned step on the Locust workers and judges
it with ``analysis.judge_step``. Also runs the old notebook's method (``load.method =
"legacy"``) for side-by-side comparisons.

Which search: ``slow_search.choose_slow_search`` decides from the warm-up's sequential
rate whether a fixed-length step can see an overload of the search's precision. If it can
(fast endpoints), the fixed-step ``StepSearchPolicy``; if not (slow requests), first the
closed-loop probe (``_probe_capacity``, levels chosen by ``slow_search.next_probe``)
and then ``SlowEndpointPolicy``'s open-loop steps from its estimate, judged with the
rising-latency criterion too. The probe is load: its seconds count in ``load_seconds``.

The engine knows nothing about how the endpoint runs: whoever deployed it may pass a
``target_health`` callable (the local pipeline asks its server process and ``/ping``). It is
asked after the warm-up and after every step; when it says the endpoint is gone the search
ends at once, the type is failed with the step and rate it died at, and the steps measured
before are kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from rightsizer.analysis import closed_loop_throughput, judge_step, top_errors
from rightsizer.loadgen.messages import ClosedLoop
from rightsizer.loadgen.processes import ClosedLoopResult, LoadGenerator, StepSamples
from rightsizer.loadgen.target import Target
from rightsizer.payloads import LoadedPayload
from rightsizer.schema import LoadSettings, Objective
from rightsizer.search_controller import MAX_COOL_DOWN_SECONDS as MAX_COOL_DOWN_SECONDS
from rightsizer.search_controller import (
    Bounds,
    Policy,
    Progress,
    SearchController,
    StepOutcome,
    StepPlan,
    StepSearchPolicy,
    StopCheck,
)
from rightsizer.slow_search import (
    ProbeLevel,
    SlowEndpointPolicy,
    choose_slow_search,
    next_probe,
    probe_budget,
    probe_estimate,
    probe_successes_needed,
)
from rightsizer.summary import TypeSummary

# Why the target can no longer be load-tested (its process died, it stopped answering), or None.
TargetHealth = StopCheck
WARM_UP_MAX_SECONDS = 60.0
# The warm-up's last latencies give the sequential rate and the service times' spread.
WARM_UP_LATENCIES_KEPT = 10
SLOW_WARM_UP_MIN_SECONDS = 20.0  # see _warm_up_longer
# The old notebook: `locust -u 4000 -r 2`.
LEGACY_USERS, LEGACY_SPAWN_RATE = 4000, 2.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def find_max_rate(
    target: Target,
    payloads: list[LoadedPayload],
    objective: Objective,
    load: LoadSettings,
    out_dir: Path,
    *,
    instance_type: str = "",
    instance_count: int = 1,
    progress: Progress | None = None,
    should_stop: Callable[[], str | None] | None = None,
    target_health: TargetHealth | None = None,
) -> TypeSummary:
    """Measure ``target`` and write ``out_dir/summary.json`` (+ Locust's CSVs).

    ``should_stop`` is asked before each step; a reason (interrupted) ends the search and
    marks the type failed with that reason, keeping the steps measured so far.
    ``target_health`` is asked after the warm-up and after each step; a reason (the endpoint
    died or stopped answering) ends the search at once in the same way, naming the step.
    """
    health = target_health or (lambda: None)
    say = progress or (lambda _message: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = TypeSummary(
        instance_type=instance_type,
        instance_count=instance_count,
        status="succeeded",
        method=load.method,
        started_at=_now(),
    )
    with LoadGenerator(
        target,
        payloads,
        processes=load.processes,
        request_timeout=load.request_timeout_seconds,
        csv_dir=out_dir,
    ) as generator:
        warm_began = time.monotonic()
        warm_latency_ms = _warm_up(generator, summary, health, say)
        if warm_latency_ms is not None and load.method != "legacy":
            warm_latency_ms = _warm_up_longer(generator, load, warm_latency_ms, warm_began)
        if warm_latency_ms is None:
            pass  # the summary says why
        elif load.method == "legacy":
            _legacy(generator, objective, load, summary, say)
            gone = health()
            if gone:
                summary.status, summary.failed_stage = "failed", "load_test"
                summary.reason = f"the endpoint died during the legacy ramp: {gone}"
        else:
            _search(generator, objective, load, warm_latency_ms, summary, say,
                    should_stop or (lambda: None), health)
    summary.finished_at = _now()
    (out_dir / "summary.json").write_text(summary.model_dump_json(indent=2))
    return summary


def _warm_up_longer(
    generator: LoadGenerator, load: LoadSettings, latency_ms: pd.Series, began: float
) -> pd.Series:
    """Before the slow-endpoint path, sequential requests for ``SLOW_WARM_UP_MIN_SECONDS``.

    A cold period of steady latency is invisible to the warm-up's settle test. The fixed-step
    search outlasts a short one (its first steps run well below the knee); the slow path may
    end one step after its probe, so it starts only after this long, on the latencies of the
    last warm-up (an endpoint that got faster may then take the fixed-step path)."""
    while (
        choose_slow_search(load, 1000.0 / float(latency_ms.median()))
        and (remaining := SLOW_WARM_UP_MIN_SECONDS - (time.monotonic() - began)) > 0
    ):
        more, _ = generator.warm(remaining)
        ok = more.latency_ms[more.ok]
        if ok.empty:
            break
        latency_ms = ok.tail(WARM_UP_LATENCIES_KEPT)
    return latency_ms


def _search(
    generator: LoadGenerator,
    objective: Objective,
    load: LoadSettings,
    warm_latency_ms: pd.Series,
    summary: TypeSummary,
    say: Progress,
    should_stop: StopCheck,
    health: TargetHealth,
) -> None:
    """The open-loop search, after the closed-loop probe where the endpoint is slow.

    ``warm_latency_ms``: the settled sequential latencies of the warm-up."""
    sequential_rps = 1000.0 / float(warm_latency_ms.median())
    policy: Policy = StepSearchPolicy.from_load(load, sequential_rps)
    trend_tolerance, probe_seconds = None, 0.0
    if choose_slow_search(load, sequential_rps):
        began = time.monotonic()
        cv = float(warm_latency_ms.std(ddof=1) / warm_latency_ms.mean())
        needed = probe_successes_needed(0.0 if math.isnan(cv) else cv, load.precision)
        estimate = _probe_capacity(generator, load, sequential_rps, needed, summary, say,
                                   should_stop)
        probe_seconds = time.monotonic() - began
        gone = health()
        if gone:
            summary.status, summary.failed_stage = "failed", "load_test"
            summary.reason = f"the endpoint died during the closed-loop probe: {gone}"
            summary.load_seconds = round(probe_seconds, 1)
            return
        policy = SlowEndpointPolicy.from_estimate(load, estimate, 1 / sequential_rps)
        trend_tolerance = load.precision / 2
    controller = SearchController(
        policy,
        GeneratorRunner(generator, objective, load.request_timeout_seconds, trend_tolerance),
        Bounds(load.max_steps, load.max_seconds - probe_seconds),
        progress=say,
        should_stop=should_stop,
        target_health=health,
    )
    controller.run().apply_to(summary)
    summary.load_seconds = round(summary.load_seconds + probe_seconds, 1)


def _probe_capacity(
    generator: LoadGenerator,
    load: LoadSettings,
    sequential_rps: float,
    successes_needed: int,
    summary: TypeSummary,
    say: Progress,
    should_stop: StopCheck,
) -> float:
    """The closed-loop probe's capacity estimate (``slow_search.next_probe``)."""
    say(f"slow endpoint ({1 / sequential_rps:.2f} s a request): closed-loop probe first")
    levels = [ProbeLevel(1, sequential_rps, 0, 0.0)]
    budget = probe_budget(load)
    began = time.monotonic()
    while not should_stop() and (
        plan := next_probe(levels, time.monotonic() - began, successes_needed, budget)
    ) is not None:
        command = ClosedLoop(plan.clients, plan.min_each, plan.min_total, plan.max_seconds,
                             drain=load.request_timeout_seconds)
        levels.append(_probe_level(generator.closed_loop(command)))
        say(f"closed-loop probe: {plan.clients} clients -> {levels[-1].throughput:.3f} rps")
    estimate = probe_estimate(levels)
    summary.notes.append(
        "slow endpoint: closed-loop probe (clients: rps) "
        + ", ".join(f"{level.clients}: {level.throughput:.3f}" for level in levels)
        + f"; capacity estimate {estimate:.3f} rps, confirmed by open-loop steps"
    )
    return estimate


def _probe_level(result: ClosedLoopResult) -> ProbeLevel:
    successes = sum(int(frame.ok.iloc[1:].sum()) for frame in result.per_client)
    return ProbeLevel(
        result.clients, closed_loop_throughput(result.per_client), successes, result.seconds
    )


def _warm_up(
    generator: LoadGenerator, summary: TypeSummary, health: TargetHealth, say: Progress
) -> pd.Series | None:
    """Warm the endpoint up; its last (settled) successful latencies, or None (type failed)."""
    say("warming up: sequential requests until latency settles")
    warm, settled = generator.warm(WARM_UP_MAX_SECONDS)
    ok_latency = warm.latency_ms[warm.ok]
    gone = health()
    if gone:
        summary.status, summary.failed_stage = "failed", "warm_up"
        summary.reason = f"the endpoint died during the warm-up: {gone}"
        return None
    if ok_latency.empty:
        summary.status, summary.failed_stage = "failed", "warm_up"
        summary.reason = "no successful response while warming up: " + "; ".join(top_errors(warm))
        return None
    if not settled:
        summary.notes.append(
            f"latency had not settled after {WARM_UP_MAX_SECONDS:.0f} s of warm-up"
        )
    return ok_latency.tail(WARM_UP_LATENCIES_KEPT)


class StepSampler(Protocol):
    """What the runner needs of the load generator (``LoadGenerator`` is one)."""

    def step(self, rate: float, seconds: float, drain: float) -> StepSamples: ...


class GeneratorRunner:
    """The controller's ``StepRunner`` on the Locust workers: run a plan, judge its samples."""

    def __init__(
        self,
        generator: StepSampler,
        objective: Objective,
        request_timeout: float,
        latency_trend_tolerance: float | None = None,
    ) -> None:
        self._generator = generator
        self._objective = objective
        self._request_timeout = request_timeout
        self._trend_tolerance = latency_trend_tolerance

    def run_step(self, plan: StepPlan) -> StepOutcome:
        drain = min(self._request_timeout, max(2.0, plan.seconds / 2))
        samples = self._generator.step(plan.rate, plan.seconds, drain)
        verdict = judge_step(
            samples.requests,
            samples.unanswered,
            target_rps=plan.rate,
            window_start=samples.start + plan.warmup_seconds,
            window_end=samples.end,
            sent_total=samples.sent,
            step_seconds=plan.seconds,
            worker_cpu=samples.worker_cpu,
            objective=self._objective,
            latency_trend_tolerance=self._trend_tolerance,
        )
        step = verdict.result
        if not step.passed:
            step.reasons.extend(top_errors(samples.requests))
        # Rising latency measures the capacity better than the answers of a short step.
        capacity = verdict.capacity_estimate or verdict.achieved_rps
        return StepOutcome(step, capacity, verdict.generator_limited, len(samples.unanswered))


def _legacy(
    generator: LoadGenerator,
    objective: Objective,
    load: LoadSettings,
    summary: TypeSummary,
    say: Progress,
) -> None:
    say(f"legacy method: ramping {LEGACY_SPAWN_RATE:g} users/s up to {LEGACY_USERS} users")
    began = time.monotonic()
    result = generator.legacy(
        {
            "max_users": LEGACY_USERS,
            "spawn_rate": LEGACY_SPAWN_RATE,
            "failure_ratio": objective.max_failure_rate,
            "max_seconds": load.max_seconds,
        }
    )
    summary.load_seconds = round(time.monotonic() - began, 1)
    summary.max_sustainable_rps = round(result.reported_rps, 3)
    summary.bottleneck = "endpoint"
    summary.notes.append(
        f"legacy method stopped by {result.stopped_by} after {result.seconds:.0f} s "
        f"({result.requests} requests, {result.failures} failures); the rate is Locust's "
        "moving average at that moment, failed requests included"
    )
