"""The load engine: find one endpoint's maximum sustainable request rate.

warm-up (sequential requests until latency settles) -> steps of open-loop load chosen by
``search.next_rate`` and judged by ``analysis.judge_step`` -> ``summary.json`` beside
Locust's CSVs. Also runs the old notebook's method (``load.method = "legacy"``) for
side-by-side comparisons.

The engine knows nothing about how the endpoint runs: whoever deployed it may pass a
``target_health`` callable (the local pipeline asks its server process and ``/ping``). It is
asked after the warm-up and after every step; when it says the endpoint is gone the search
ends at once, the type is failed with the step and rate it died at, and the steps measured
before are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rightsizer.analysis import judge_step, top_errors
from rightsizer.loadgen.processes import LoadGenerator
from rightsizer.loadgen.target import Target
from rightsizer.payloads import LoadedPayload
from rightsizer.schema import LoadSettings, Objective
from rightsizer.search import Probe, SearchSettings, best_rate, next_rate
from rightsizer.summary import Bottleneck, StepResult, TypeSummary

Progress = Callable[[str], None]
# Why the target can no longer be load-tested (its process died, it stopped answering), or None.
TargetHealth = Callable[[], str | None]
WARM_UP_MAX_SECONDS = 60.0
# After a failing step the server may still be working through abandoned requests.
MAX_COOL_DOWN_SECONDS = 30.0
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
        say("warming up: sequential requests until latency settles")
        warm, settled = generator.warm(WARM_UP_MAX_SECONDS)
        ok_latency = warm.latency_ms[warm.ok]
        gone = health()
        if gone:
            summary.status, summary.failed_stage = "failed", "warm_up"
            summary.reason = f"the endpoint died during the warm-up: {gone}"
        elif ok_latency.empty:
            summary.status, summary.failed_stage = "failed", "warm_up"
            summary.reason = "no successful response while warming up: " + "; ".join(
                top_errors(warm)
            )
        else:
            if not settled:
                summary.notes.append(
                    f"latency had not settled after {WARM_UP_MAX_SECONDS:.0f} s of warm-up"
                )
            if load.method == "legacy":
                _legacy(generator, objective, load, summary, say)
                gone = health()
                if gone:
                    summary.status, summary.failed_stage = "failed", "load_test"
                    summary.reason = f"the endpoint died during the legacy ramp: {gone}"
            else:
                sequential_rps = 1000.0 / float(ok_latency.tail(10).median())
                _search(
                    generator, objective, load, summary, sequential_rps, say, should_stop, health
                )
    summary.finished_at = _now()
    (out_dir / "summary.json").write_text(summary.model_dump_json(indent=2))
    return summary


def auto_start_rps(load: LoadSettings, sequential_rps: float) -> float:
    """Half the rate one sequential client reaches: surely sustainable, and not far below."""
    if load.start_rps is not None:
        return load.start_rps
    return min(max(1.0, round(sequential_rps / 2, 1)), load.max_rps)


def _search(
    generator: LoadGenerator,
    objective: Objective,
    load: LoadSettings,
    summary: TypeSummary,
    sequential_rps: float,
    say: Progress,
    should_stop: Callable[[], str | None] | None,
    health: TargetHealth,
) -> None:
    settings = SearchSettings(
        start_rps=auto_start_rps(load, sequential_rps),
        growth_factor=load.growth_factor,
        max_rps=load.max_rps,
        precision=load.precision,
    )
    drain = min(load.request_timeout_seconds, max(2.0, load.step_seconds / 2))
    history: list[Probe] = []
    bottleneck: Bottleneck = "endpoint"
    began = time.monotonic()
    stopped_by = None
    while True:
        stopped_by = should_stop() if should_stop else None
        if stopped_by:
            break
        decision = next_rate(history, settings)
        if decision.next_rps is None:
            summary.notes.append(f"search stopped: {decision.stop_reason}")
            if decision.rate_limited:
                bottleneck = "rate-limit"
            break
        if len(history) >= load.max_steps:
            summary.notes.append(f"search stopped at the step bound max_steps={load.max_steps}")
            break
        if time.monotonic() - began + load.step_seconds > load.max_seconds:
            summary.notes.append(
                f"search stopped at the time bound max_seconds={load.max_seconds:g}"
            )
            break
        rate = decision.next_rps
        say(f"step {len(history) + 1}: offering {rate:.1f} rps for {load.step_seconds:g} s")
        samples = generator.step(rate, load.step_seconds, drain)
        verdict = judge_step(
            samples.requests,
            samples.unanswered,
            target_rps=rate,
            window_start=samples.start + load.warmup_seconds,
            window_end=samples.end,
            sent_total=samples.sent,
            step_seconds=load.step_seconds,
            worker_cpu=samples.worker_cpu,
            objective=objective,
        )
        step = verdict.result
        if not step.passed:
            step.reasons.extend(top_errors(samples.requests))
        summary.steps.append(step)
        history.append(Probe(rate, step.passed, verdict.achieved_rps))
        # Interrupted (Ctrl-C stops the endpoint too): say so rather than "it died".
        stopped_by = should_stop() if should_stop else None
        gone = None if stopped_by else health()
        if gone:
            if not step.passed:
                step.reasons.append("the endpoint died during this step")
            stopped_by = f"the endpoint died during step {len(history)} ({rate:.1f} rps): {gone}"
            summary.notes.append(
                f"search stopped after step {len(history)}: the endpoint died; the steps before "
                "it are kept, but they are not a capacity"
            )
        say(_describe_step(len(history), step))
        if stopped_by:
            break
        if verdict.generator_limited:
            bottleneck = "load-generator"
            summary.notes.append(
                f"the load generator could not offer {rate:.1f} rps; the endpoint's capacity is "
                "at least the reported rate: use more load-generator processes (load.processes)"
            )
            break
        if not step.passed and len(samples.unanswered):
            time.sleep(
                min(MAX_COOL_DOWN_SECONDS, len(samples.unanswered) / max(step.achieved_rps, 1))
            )
    # Asked once more: an interrupt that came as the search ended still marks the type.
    stopped_by = stopped_by or (should_stop() if should_stop else None)
    summary.load_seconds = round(time.monotonic() - began, 1)
    summary.max_sustainable_rps = round(best_rate(history), 3)
    summary.bottleneck = bottleneck
    best = _best_step(summary.steps)
    if stopped_by:
        summary.status, summary.failed_stage, summary.reason = "failed", "load_test", stopped_by
    elif best is None:
        summary.status, summary.failed_stage = "failed", "load_test"
        first = summary.steps[0] if summary.steps else None
        summary.reason = (
            f"no step met the objective, not even {first.target_rps:g} rps: "
            + "; ".join(first.reasons)
            if first
            else "no step could be run within the bounds"
        )
    if best is not None:
        summary.p50_ms, summary.p95_ms, summary.p99_ms = best.p50_ms, best.p95_ms, best.p99_ms


def _best_step(steps: list[StepResult]) -> StepResult | None:
    passing = [s for s in steps if s.passed]
    return max(passing, key=lambda s: s.target_rps, default=None)


def _describe_step(number: int, step: StepResult) -> str:
    verdict = "passed" if step.passed else "FAILED: " + "; ".join(step.reasons[:2])
    p99 = f"{step.p99_ms:.0f} ms" if step.p99_ms is not None else "n/a"
    return (
        f"step {number}: {step.target_rps:.1f} rps -> achieved {step.achieved_rps:.1f} rps, "
        f"failures {step.failure_rate:.2%}, p99 {p99}: {verdict}"
    )


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
        max_users=LEGACY_USERS,
        spawn_rate=LEGACY_SPAWN_RATE,
        failure_ratio=objective.max_failure_rate,
        max_seconds=load.max_seconds,
    )
    summary.load_seconds = round(time.monotonic() - began, 1)
    summary.max_sustainable_rps = round(float(result["reported_rps"]), 3)
    summary.bottleneck = "endpoint"
    summary.notes.append(
        f"legacy method stopped by {result['stopped_by']} after {result['seconds']:.0f} s "
        f"({result['requests']} requests, {result['failures']} failures); the rate is Locust's "
        "moving average at that moment, failed requests included"
    )
