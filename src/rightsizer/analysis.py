"""Judge one step of load from its raw samples (pure: pandas in, StepResult out).

A step is judged on its own window, the warm-up at its start discarded:
- failures: requests sent in the window that got an error (HTTP >= 400, timeout, reset);
  the step fails when we are 95% sure the true failure rate is above the objective (Wilson
  lower bound), so a background of rare errors does not stop the search by bad luck;
- latency: the objective's percentile of successful requests sent in the window;
- throughput: responses *completed* in the window per second must keep up with the
  offered rate. An overloaded server that still answers everything, only later and
  later, fails here even though nothing has failed yet;
- the load generator: if it sent fewer requests than scheduled, the step proves nothing
  about the endpoint and the search stops, blaming the generator;
- rising latency (only when the caller asks, with ``latency_trend_tolerance``: the slow-endpoint
  search): in an overloaded first-come-first-served queue each request waits longer than the
  one before, latency rising by offered / capacity - 1 seconds per second of schedule. A
  step of a few dozen slow requests ends long before that backlog overflows a queue or falls
  behind by ``KEEP_UP_SLACK`` answers, but the slope of latency on scheduled time shows it,
  and gives the capacity: offered / (1 + slope). Queue latencies are autocorrelated (each
  request waits for the ones before it), so the slope is tested against its noise as if
  latency were a random walk with the observed step-to-step spread, not as independent
  samples: a variable service time that wanders does not fail a step that keeps up.

Apart from the steps: ``closed_loop_throughput``, the rate of concurrent sequential clients
that keep the endpoint busy (its capacity once they saturate it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rightsizer.schema import Objective
from rightsizer.summary import StepResult
from rightsizer.token_metrics import token_stats

# Achieved (or offered) rate may fall this far below the target and still count as keeping up:
# it absorbs counting noise at the window's edges (at least KEEP_UP_SLACK requests). Well
# below the search precision on purpose: an overloaded server first shows only as a backlog
# growing by (offered - capacity) per second, and that is what this criterion sees.
KEEP_UP_TOLERANCE = 0.01
KEEP_UP_SLACK = 3
# A load-generator process busier than this share of a core is saturated.
GENERATOR_SATURATED_CPU = 0.90
Z_95 = 1.959964
# Rising latency: too few answered requests make no trend; a slope must stand this many of its
# random-walk standard errors above zero to count.
MIN_TREND_REQUESTS = 10
TREND_Z = 3.0


@dataclass(frozen=True)
class StepVerdict:
    result: StepResult
    generator_limited: bool  # the generator, not the endpoint, failed to offer the load
    achieved_rps: float
    capacity_estimate: float | None = None  # from rising latency, when that failed the step


def wilson_lower_bound(failures: int, total: int, z: float = Z_95) -> float:
    """Lower end of the Wilson score interval for a binomial proportion."""
    if total == 0:
        return 0.0
    p = failures / total
    denom = 1 + z * z / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, (centre - margin) / denom)


def _percentile(values: pd.Series, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def judge_step(
    requests: pd.DataFrame,
    unanswered: np.ndarray,
    *,
    target_rps: float,
    window_start: float,
    window_end: float,
    sent_total: int,
    step_seconds: float,
    worker_cpu: list[float],
    objective: Objective,
    latency_trend_tolerance: float | None = None,
) -> StepVerdict:
    """``requests``: one row per answered request (scheduled, started, latency_ms, ok, ...).

    ``latency_trend_tolerance``: fail the step when latency rises faster than this (seconds
    per second of schedule, i.e. offered / capacity - 1); None: no trend criterion."""
    width = window_end - window_start
    in_window = requests[(requests.scheduled >= window_start) & (requests.scheduled < window_end)]
    lost = int(((unanswered >= window_start) & (unanswered < window_end)).sum())
    answered = len(in_window)
    failures = int((~in_window.ok).sum())
    ok_latency = in_window.latency_ms[in_window.ok]

    completed_at = requests.started + requests.latency_ms / 1000.0
    done_in_window = (completed_at >= window_start) & (completed_at < window_end)
    # Keeping up is about answering at all (errors have their own criterion); the capacity
    # estimate the search uses is the rate of successful answers.
    answered_rps = float(done_in_window.sum()) / width
    achieved = float((done_in_window & requests.ok).sum()) / width
    offered = (
        float(
            ((requests.scheduled >= window_start) & (requests.scheduled < window_end)).sum() + lost
        )
        / width
    )
    # Sends that left late (the generator was busy) make the offered rate a fiction.
    late = (in_window.started - in_window.scheduled) > 0.05 + 1.0 / max(target_rps, 1e-9)
    late_share = float(late.mean()) if answered else 0.0

    reasons: list[str] = []
    failure_rate = failures / answered if answered else 0.0
    if wilson_lower_bound(failures, answered) > objective.max_failure_rate:
        reasons.append(
            f"failure rate {failure_rate:.2%} is above the objective "
            f"{objective.max_failure_rate:.2%}"
        )
    percentile_ms = None
    if objective.latency_percentile is not None and objective.max_latency_ms is not None:
        percentile_ms = _percentile(ok_latency, objective.latency_percentile)
        if percentile_ms is not None and percentile_ms > objective.max_latency_ms:
            reasons.append(
                f"p{objective.latency_percentile:g} latency {percentile_ms:.0f} ms is above "
                f"{objective.max_latency_ms:g} ms"
            )
    if lost:
        reasons.append(f"{lost} requests still unanswered when the step ended")
    busiest = max(worker_cpu, default=0.0)
    expected_sends = target_rps * step_seconds
    could_not_offer = sent_total < (1 - KEEP_UP_TOLERANCE) * expected_sends or late_share > 0.05
    if could_not_offer:
        reasons.append(
            f"load generator could not offer {target_rps:.1f} rps "
            f"({late_share:.0%} of requests left late, busiest process at {busiest:.0%} CPU)"
        )
    elif (target_rps - answered_rps) * width > max(
        KEEP_UP_TOLERANCE * target_rps * width, KEEP_UP_SLACK
    ):
        reasons.append(f"endpoint kept up with only {answered_rps:.1f} of {target_rps:.1f} rps")
    trend = None
    if latency_trend_tolerance is not None and not could_not_offer:
        trend = rising_latency(in_window, target_rps, latency_trend_tolerance)
        if trend is not None:
            reasons.append(trend.reason)
    if answered == 0 and not lost:
        reasons.append("no requests in the measurement window")
    tokens, token_reasons = token_stats(in_window, requests[done_in_window], width, objective)
    reasons.extend(token_reasons)
    # A saturated generator also reads responses late, inflating latency and deflating the
    # achieved rate: a failure measured then may be the generator's own.
    generator_limited = bool(reasons) and (could_not_offer or busiest > GENERATOR_SATURATED_CPU)

    result = StepResult(
        target_rps=round(target_rps, 3),
        achieved_rps=round(achieved, 3),
        offered_rps=round(offered, 3),
        requests=answered + lost,
        failures=failures,
        failure_rate=round(failure_rate, 6),
        p50_ms=_round(_percentile(ok_latency, 50)),
        p95_ms=_round(_percentile(ok_latency, 95)),
        p99_ms=_round(_percentile(ok_latency, 99)),
        latency_objective_ms=_round(percentile_ms),
        passed=not reasons,
        reasons=reasons,
        generator_cpu=round(busiest, 3),
        duration_seconds=round(step_seconds, 3),
        tokens=tokens,
    )
    return StepVerdict(
        result, generator_limited, achieved, trend.capacity if trend is not None else None
    )


@dataclass(frozen=True)
class LatencyTrend:
    reason: str
    capacity: float  # offered / (1 + slope): the rate the endpoint kept up with


def rising_latency(
    in_window: pd.DataFrame, target_rps: float, tolerance: float
) -> LatencyTrend | None:
    """The overload a rising latency shows (see the module docstring), or None."""
    ok = in_window[in_window.ok].sort_values("scheduled")
    if len(ok) < MIN_TREND_REQUESTS:
        return None
    scheduled = ok.scheduled.to_numpy(dtype=float)
    latency_s = ok.latency_ms.to_numpy(dtype=float) / 1000.0
    if np.ptp(scheduled) <= 0:
        return None
    slope = float(np.polyfit(scheduled, latency_s, 1)[0])
    if slope <= tolerance or slope <= TREND_Z * random_walk_slope_error(latency_s, target_rps):
        return None
    capacity = target_rps / (1 + slope)
    reason = (
        f"latency kept rising through the step (+{slope * 1000:.0f} ms per s): a backlog "
        f"growing as on an endpoint of about {capacity:.3g} rps"
    )
    return LatencyTrend(reason, capacity)


def random_walk_slope_error(latency_s: np.ndarray, rate: float) -> float:
    """Standard error of the least-squares slope (per second at ``rate`` requests/s) of a
    random walk of ``len(latency_s)`` steps whose step spread is that of ``latency_s``'s
    successive differences: sigma * sqrt(6 / 5n) per request, times the rate."""
    steps = np.diff(latency_s)
    return float(np.std(steps)) * math.sqrt(1.2 / len(latency_s)) * rate


def closed_loop_throughput(per_client: Sequence[pd.DataFrame]) -> float:
    """Successful answers per second of clients that each send as soon as they are answered.

    Per client: its successes after its first answer over the time from its first answer to
    its last; summed over the clients. The first answer is left out because all clients start
    at once, so it met a queue the steady state does not have; per client, so that the edges
    of the run (clients that finish early) do not bias the sum. Once the clients saturate the
    endpoint this is its capacity."""
    total = 0.0
    for frame in per_client:
        done = (frame.started + frame.latency_ms / 1000.0).to_numpy(dtype=float)
        span = float(done[-1] - done[0]) if len(done) >= 2 else 0.0
        if span > 0:
            total += float(frame.ok.iloc[1:].sum()) / span
    return total


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def top_errors(requests: pd.DataFrame, limit: int = 3) -> list[str]:
    """The most frequent error texts, for reasons a person can act on."""
    errors = requests.error.dropna()
    return [f"{text} (x{count})" for text, count in errors.value_counts().head(limit).items()]
