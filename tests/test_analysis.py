"""Judging one step from raw samples: pure pandas, built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rightsizer.analysis import judge_step, wilson_lower_bound
from rightsizer.loadgen.processes import SAMPLE_COLUMNS
from rightsizer.schema import Objective

START, SECONDS, WARMUP = 1_000.0, 10.0, 2.0


def samples(
    rate: float,
    latency_ms: float | np.ndarray = 10.0,
    ok: np.ndarray | None = None,
    lag: float = 0.0,
) -> pd.DataFrame:
    scheduled = START + np.arange(int(rate * SECONDS)) / rate
    n = len(scheduled)
    frame = pd.DataFrame(
        {
            "scheduled": scheduled,
            "started": scheduled + lag,
            "latency_ms": np.broadcast_to(latency_ms, n).astype(float),
            "ok": np.ones(n, dtype=bool) if ok is None else ok,
            "status": 200,
            "error": None,
            "ttft_ms": np.nan,
            "output_tokens": np.nan,
            "tokens_reported": False,
        }
    )
    return frame[SAMPLE_COLUMNS]


def judge(frame: pd.DataFrame, rate: float, objective: Objective | None = None, **kw: object):
    args = dict(
        target_rps=rate,
        window_start=START + WARMUP,
        window_end=START + SECONDS,
        sent_total=len(frame),
        step_seconds=SECONDS,
        worker_cpu=[0.3],
        objective=objective or Objective(),
    )
    args.update(kw)
    return judge_step(frame, np.array([]), **args)


def test_a_healthy_step_passes_with_its_figures() -> None:
    verdict = judge(samples(100), 100)
    step = verdict.result
    assert step.passed and not step.reasons
    assert step.requests == 800  # the warm-up's 200 requests are not judged
    assert step.achieved_rps == pytest.approx(100, rel=0.02)
    assert step.p50_ms == pytest.approx(10)


def test_failures_above_the_objective_fail_the_step() -> None:
    ok = np.random.default_rng(1).random(1000) > 0.05
    step = judge(samples(100, ok=ok), 100).result
    assert not step.passed and "failure rate" in step.reasons[0]


def test_a_background_below_the_objective_does_not_fail_the_step() -> None:
    # 0.5% random failures, under a 1% objective: a noisy window must not stop the search.
    for seed in range(20):
        ok = np.random.default_rng(seed).random(1000) > 0.005
        assert judge(samples(100, ok=ok), 100).result.passed


def test_latency_objective() -> None:
    objective = Objective(latency_percentile=99, max_latency_ms=50)
    latency = np.full(1000, 10.0)
    latency[::50] = 80.0  # 2% of requests slow: p99 is 80 ms
    step = judge(samples(100, latency_ms=latency), 100, objective).result
    assert not step.passed and "p99 latency" in step.reasons[0]
    assert judge(samples(100, latency_ms=10.0), 100, objective).result.passed


def test_slow_but_answered_is_not_a_failure_without_a_latency_objective() -> None:
    assert judge(samples(100, latency_ms=900.0), 100).result.passed


def test_a_growing_backlog_fails_even_without_errors() -> None:
    # The server completes 95 of 100 rps: latency grows through the step, nothing fails yet.
    rate, capacity = 100, 95
    n = int(rate * SECONDS)
    completion = START + np.arange(n) / capacity + 0.01
    latency = (completion - (START + np.arange(n) / rate)) * 1000
    step = judge(samples(rate, latency_ms=latency), rate).result
    assert not step.passed and "kept up" in step.reasons[0]


def test_a_late_generator_is_blamed_not_the_endpoint() -> None:
    verdict = judge(samples(100, lag=0.5), 100)
    assert not verdict.result.passed and verdict.generator_limited
    assert "load generator" in verdict.result.reasons[0]


def test_a_saturated_generator_turns_a_failure_into_its_own() -> None:
    ok = np.random.default_rng(1).random(1000) > 0.05
    assert judge(samples(100, ok=ok), 100, worker_cpu=[0.97]).generator_limited
    assert not judge(samples(100), 100, worker_cpu=[0.97]).generator_limited


def test_unanswered_requests_fail_the_step() -> None:
    frame = samples(100)
    verdict = judge_step(
        frame,
        np.array([START + 5.0] * 10),
        target_rps=100,
        window_start=START + WARMUP,
        window_end=START + SECONDS,
        sent_total=len(frame) + 10,
        step_seconds=SECONDS,
        worker_cpu=[0.2],
        objective=Objective(),
    )
    assert not verdict.result.passed and "unanswered" in verdict.result.reasons[0]


def test_wilson_lower_bound() -> None:
    assert wilson_lower_bound(0, 100) == 0
    assert wilson_lower_bound(10, 1000) < 0.01 < wilson_lower_bound(30, 1000)
