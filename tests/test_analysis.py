"""Judging one step from raw samples: pure pandas, built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rightsizer.analysis import (
    closed_loop_throughput,
    judge_step,
    random_walk_slope_error,
    wilson_lower_bound,
)
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


# --- Rising latency (the slow-endpoint search) and the closed-loop throughput -----------------

SLOW_SECONDS, SLOW_WARMUP = 42.0, 2.0


def one_slot_queue(rate: float, service_s: np.ndarray) -> pd.DataFrame:
    """Evenly spaced arrivals on one first-come-first-served slot (Lindley's recursion)."""
    n = len(service_s)
    scheduled = START + np.arange(n) / rate
    finish = np.empty(n)
    free_at = START
    for i in range(n):
        free_at = max(free_at, scheduled[i]) + service_s[i]
        finish[i] = free_at
    frame = samples(rate)  # for the columns; replaced below
    frame = frame.iloc[:0].reindex(range(n))
    frame["scheduled"], frame["started"] = scheduled, scheduled
    frame["latency_ms"] = (finish - scheduled) * 1000
    frame["ok"], frame["status"], frame["tokens_reported"] = True, 200, False
    return frame[SAMPLE_COLUMNS]


def judge_slow(frame: pd.DataFrame, rate: float, tolerance: float | None):
    return judge_step(
        frame,
        np.array([]),
        target_rps=rate,
        window_start=START + SLOW_WARMUP,
        window_end=START + SLOW_SECONDS,
        sent_total=len(frame),
        step_seconds=SLOW_SECONDS,
        worker_cpu=[0.1],
        objective=Objective(),
        latency_trend_tolerance=tolerance,
    )


def test_latency_rising_through_a_short_step_fails_it_and_measures_the_capacity() -> None:
    # 1.05 rps on a 1 rps endpoint: 42 requests, the backlog grows by 2 (within the keep-up
    # slack, and no queue overflows yet), latency by 48 ms a second.
    rate = 1.05
    frame = one_slot_queue(rate, np.ones(int(rate * SLOW_SECONDS)))
    assert judge_slow(frame, rate, tolerance=None).result.passed  # what the fixed step sees
    verdict = judge_slow(frame, rate, tolerance=0.015)
    assert not verdict.result.passed
    assert "latency kept rising" in verdict.result.reasons[0]
    assert verdict.capacity_estimate == pytest.approx(1.0, rel=0.005)


def test_a_wandering_queue_that_keeps_up_is_not_a_rising_latency() -> None:
    # 0.97 rps on 1 rps with service times uniform on 1 s x [0.75, 1.25]: latencies are
    # autocorrelated and wander by seconds, but the queue is stable.
    for seed in range(30):
        service = np.random.default_rng(seed).uniform(0.75, 1.25, 41)
        verdict = judge_slow(one_slot_queue(0.97, service), 0.97, tolerance=0.015)
        reasons = verdict.result.reasons
        assert not any("latency kept rising" in r for r in reasons), (seed, reasons)
        assert verdict.capacity_estimate is None


def test_random_walk_slope_error_is_zero_for_steady_steps_and_grows_with_their_spread() -> None:
    steady = np.linspace(1.0, 2.0, 40)  # a constant rise: no noise in its steps
    assert random_walk_slope_error(steady, rate=1.0) == pytest.approx(0.0, abs=1e-12)
    walk = np.cumsum(np.random.default_rng(0).normal(0, 0.1, 40))
    assert random_walk_slope_error(walk, 1.0) == pytest.approx(0.1 * np.sqrt(1.2 / 40), rel=0.3)
    assert random_walk_slope_error(walk, 2.0) == pytest.approx(
        2 * random_walk_slope_error(walk, 1.0)
    )


def client_frame(latency_s: list[float], ok: list[bool] | None = None) -> pd.DataFrame:
    """One closed-loop client: each request leaves when the one before was answered."""
    started = START + np.concatenate([[0.0], np.cumsum(latency_s)[:-1]])
    n = len(latency_s)
    frame = samples(1).iloc[:0].reindex(range(n))
    frame["scheduled"], frame["started"] = started, started
    frame["latency_ms"] = np.array(latency_s) * 1000
    frame["ok"] = ok if ok is not None else [True] * n
    frame["status"], frame["tokens_reported"] = 200, False
    return frame[SAMPLE_COLUMNS]


def test_closed_loop_throughput_leaves_out_each_clients_first_answer() -> None:
    # Two clients on one 1 s slot: A is served first (1 s), then each waits for the other.
    # Counting the first answers too would give 5/9 + 5/10 = 1.06 rps.
    a, b = client_frame([1, 2, 2, 2, 2]), client_frame([2, 2, 2, 2, 2])
    assert closed_loop_throughput([a, b]) == pytest.approx(1.0)


def test_closed_loop_throughput_counts_only_successes() -> None:
    served = client_frame([1, 1, 1, 1, 1])
    refused = client_frame([0.001] * 5, ok=[False] * 5)
    assert closed_loop_throughput([served, refused]) == pytest.approx(1.0)
    assert closed_loop_throughput([client_frame([1.0])]) == 0.0  # one answer: no span
