"""Sizing, cost, autoscaling and ranking: pure arithmetic, no I/O."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsizer.recommend import (
    HOURS_PER_MONTH,
    Recommendation,
    autoscaling_policy,
    instances_needed,
    recommend,
    recommend_for_input,
    target_value,
)
from rightsizer.schema import BenchmarkInput, Objective, Traffic
from rightsizer.summary import StepResult, TypeSummary


def summary(
    instance_type: str = "ml.c5.xlarge",
    rps: float = 50.0,
    count: int = 1,
    bottleneck: str | None = "endpoint",
    **extra: object,
) -> TypeSummary:
    return TypeSummary(
        instance_type=instance_type,
        instance_count=count,
        status="succeeded",
        max_sustainable_rps=rps,
        bottleneck=bottleneck,
        **extra,
    )


def failed(instance_type: str, reason: str = "boom", stage: str = "deploy") -> TypeSummary:
    return TypeSummary(
        instance_type=instance_type, status="failed", reason=reason, failed_stage=stage
    )


def step(target: float, passed: bool, latency: float | None = None) -> StepResult:
    return StepResult(
        target_rps=target, achieved_rps=target if passed else target / 2, offered_rps=target,
        requests=100, failures=0 if passed else 50, failure_rate=0.0 if passed else 0.5,
        p50_ms=10, p95_ms=20, p99_ms=30, latency_objective_ms=latency, passed=passed,
        reasons=[] if passed else ["too many failures"],
    )


T = Traffic(min_rps=10, max_rps=100)


# --- ceil arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "capacity", "expected"),
    [
        (100, 50, 2),  # exact multiple: 2, not 3
        (101, 50, 3),
        (99, 50, 2),  # never rounds down (the old tool's round() gave 2 for 99/50 too, 1 for 70)
        (70, 50, 2),
        (10, 50, 1),  # capacity far above the rate: 1, never 0
        (0.3, 0.1, 3),  # 0.3 / 0.1 = 2.9999999999999996
        (0.7, 0.1, 7),  # 0.7 / 0.1 = 6.999999999999999
        (1.1, 0.1, 11),  # 1.1 / 0.1 = 11.000000000000002: must not become 12
        (3 * 33.3, 33.3, 3),
    ],
)
def test_instances_needed(rate: float, capacity: float, expected: int) -> None:
    assert instances_needed(rate, capacity) == expected


@pytest.mark.parametrize("capacity", [0.0, -1.0, math.nan, math.inf])
def test_instances_needed_rejects_bad_capacity(capacity: float) -> None:
    with pytest.raises(ValueError):
        instances_needed(10, capacity)


@given(
    rate=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    capacity=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
)
def test_fleet_always_covers_the_rate(rate: float, capacity: float) -> None:
    n = instances_needed(rate, capacity)
    assert n >= 1
    # Only float noise below 1e-9 relative may be forgiven.
    assert n * capacity >= rate * (1 - 1e-9)
    # And the fleet is the smallest that does: one fewer would not serve the rate.
    assert n == 1 or (n - 1) * capacity < rate


@given(
    a=st.floats(min_value=1e-3, max_value=1e5, allow_nan=False),
    b=st.floats(min_value=1e-3, max_value=1e5, allow_nan=False),
    capacity=st.floats(min_value=1e-2, max_value=1e4, allow_nan=False),
    price=st.floats(min_value=0.01, max_value=100, allow_nan=False),
    safety=st.floats(min_value=0.05, max_value=1.0),
)
def test_cost_is_monotone_in_rate(
    a: float, b: float, capacity: float, price: float, safety: float
) -> None:
    low, high = sorted((a, b))
    s = [summary(rps=capacity)]
    prices = {"ml.c5.xlarge": price}
    r_low = recommend(s, Traffic(min_rps=low, max_rps=high), safety, prices).recommended
    r_high = recommend(s, Traffic(min_rps=high, max_rps=high), safety, prices).recommended
    assert r_low is not None and r_high is not None
    assert r_low.cost_per_hour_at_min <= r_high.cost_per_hour_at_min
    assert r_low.cost_per_hour_at_min <= r_low.cost_per_hour_at_max
    assert instances_needed(low, capacity) <= instances_needed(high, capacity)


# --- one type: capacity, counts, cost -----------------------------------------------------------


def test_capacity_is_per_instance_of_the_tested_count() -> None:
    r = recommend([summary(rps=200, count=4)], T, 1.0, {"ml.c5.xlarge": 0.2})
    best = r.recommended
    assert best is not None
    assert best.capacity_per_instance == 50
    assert best.instances_needed_at_max == 2  # 100 rps / 50
    assert best.instances_needed_at_min == 1


def test_costs_follow_the_policy_fleet() -> None:
    best = recommend([summary(rps=50)], T, 0.5, {"ml.c5.xlarge": 0.2}).recommended
    assert best is not None and best.autoscaling is not None
    # min: 10 rps at the target 25 rps/instance -> 1; max: 100 rps at 50 -> 2
    assert (best.instances_at_min, best.instances_at_max) == (1, 2)
    assert best.cost_per_hour_at_min == pytest.approx(0.2)
    assert best.cost_per_hour_at_max == pytest.approx(0.4)
    assert best.monthly_cost_at_min == pytest.approx(0.2 * HOURS_PER_MONTH)
    # 0.4 $/h serving 100 rps = 360,000 inferences per hour
    assert best.cost_per_million_inferences == pytest.approx(0.4 / 360_000 * 1e6)
    assert best.headroom_at_max == pytest.approx(0.0)


# --- autoscaling --------------------------------------------------------------------------------


def test_target_value_is_capacity_times_safety_times_60() -> None:
    assert target_value(50, 0.5) == 1500
    assert target_value(12.5, 0.4) == pytest.approx(300)
    assert target_value(1e-9, 0.5) > 0  # never a zero target to divide by


def test_autoscaling_min_and_max_capacity() -> None:
    policy = autoscaling_policy(capacity_rps=50, min_rps=30, max_rps=180, safety_factor=0.5)
    assert policy.target_value == 1500
    assert policy.min_capacity == 2  # 30 rps * 60 / 1500 = 1.2 -> 2
    assert policy.max_capacity == 4  # 180 / 50 = 3.6 -> 4
    assert policy.max_capacity_at_target == 8  # 180 / 25 = 7.2 -> 8


def test_autoscaling_max_never_below_min() -> None:
    # min == max and a low safety factor: the target fleet is larger than the full-capacity one.
    policy = autoscaling_policy(capacity_rps=100, min_rps=100, max_rps=100, safety_factor=0.5)
    assert policy.min_capacity == 2
    assert policy.max_capacity == 2


def test_autoscaling_json_is_ready_to_paste() -> None:
    policy = autoscaling_policy(50, 10, 100, 0.5)
    doc = policy.put_scaling_policy("my-endpoint")
    assert doc["ResourceId"] == "endpoint/my-endpoint/variant/AllTraffic"
    config = doc["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 1500
    assert config["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (300, 60)
    target = policy.register_scalable_target("my-endpoint")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    json.dumps(doc)


# --- not viable ---------------------------------------------------------------------------------


def test_failed_type_is_listed_with_its_reason() -> None:
    r = recommend(
        [summary(), failed("ml.g4dn.xlarge", "CUDA out of memory")], T, 0.5,
        {"ml.c5.xlarge": 0.2, "ml.g4dn.xlarge": 0.7},
    )
    bad = next(o for o in r.options if o.instance_type == "ml.g4dn.xlarge")
    assert bad.status == "not_viable" and bad.rank is None
    assert "CUDA out of memory" in bad.reasons[0] and "deploy" in bad.reasons[0]
    assert "ml.g4dn.xlarge" in r.explanation and "CUDA out of memory" in r.explanation


def test_zero_capacity_is_not_viable_and_never_divides() -> None:
    s = summary("ml.t2.medium", rps=0.0, steps=[step(5, passed=False)])
    objective = Objective(latency_percentile=99, max_latency_ms=200)
    r = recommend([s], T, 0.5, {"ml.t2.medium": 0.05}, objective)
    assert r.recommended is None
    (option,) = r.options
    assert option.status == "not_viable"
    assert option.reasons == [
        "no load level met the objective: capacity is 0 (first step at 5 rps: too many failures)"
    ]
    assert "No instance type is viable" in r.explanation


def test_type_without_a_summary_is_listed_not_dropped() -> None:
    bi = BenchmarkInput.model_validate(
        {
            "model": {"kind": "existing", "name": "m"},
            "instance_types": ["ml.c5.xlarge", {"instance_type": "ml.m5.xlarge", "count": 2}],
            "payloads": [{"body": "{}", "content_type": "application/json"}],
            "traffic": {"min_rps": 10, "max_rps": 100},
        }
    )
    r = recommend_for_input(bi, [summary()], {"ml.c5.xlarge": 0.2, "ml.m5.xlarge": 0.23})
    missing = next(o for o in r.options if o.instance_type == "ml.m5.xlarge")
    assert missing.status == "not_viable" and "no summary" in missing.reasons[0]
    assert missing.instance_count_tested == 2


def test_nothing_viable_keeps_every_type() -> None:
    r = recommend([failed("ml.a.large"), failed("ml.b.large", "timeout", "smoke_test")], T, 0.5, {})
    assert r.recommended is None
    assert [o.instance_type for o in r.options] == ["ml.a.large", "ml.b.large"]
    assert "timeout" in r.explanation


def test_missing_price_is_not_viable_not_a_crash() -> None:
    r = recommend([summary()], T, 0.5, {})
    assert r.recommended is None
    assert "prices" in r.options[0].reasons[0]


def test_types_far_above_the_minimum_are_never_dropped() -> None:
    # The old tool's round(min/capacity) gave 0 instances and dropped such types.
    r = recommend([summary(rps=10_000)], Traffic(min_rps=1, max_rps=2), 0.5, {"ml.c5.xlarge": 1})
    assert r.recommended is not None
    assert r.recommended.instances_at_min == 1 and r.recommended.instances_at_max == 1


# --- lower bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize("bottleneck", ["load-generator", "rate-limit"])
def test_lower_bound_capacity_is_kept_and_flagged(bottleneck: str) -> None:
    r = recommend([summary(bottleneck=bottleneck)], T, 0.5, {"ml.c5.xlarge": 0.2})
    best = r.recommended
    assert best is not None
    assert best.capacity_is_lower_bound
    assert any("lower bound" in n for n in best.notes)
    assert "lower bound" in r.explanation


def test_endpoint_bottleneck_is_not_a_lower_bound() -> None:
    best = recommend([summary()], T, 0.5, {"ml.c5.xlarge": 0.2}).recommended
    assert best is not None and not best.capacity_is_lower_bound


# --- ranking and ties ---------------------------------------------------------------------------


def test_ranks_by_cost_at_max_traffic() -> None:
    summaries = [
        summary("ml.m5.xlarge", rps=40),  # 3 x 0.23 = 0.69
        summary("ml.c5.xlarge", rps=50),  # 2 x 0.204 = 0.408
        summary("ml.g4dn.xlarge", rps=400),  # 1 x 0.7364
    ]
    prices = {"ml.m5.xlarge": 0.23, "ml.c5.xlarge": 0.204, "ml.g4dn.xlarge": 0.7364}
    r = recommend(summaries, T, 0.5, prices)
    order = [o.instance_type for o in r.options]
    assert order == ["ml.c5.xlarge", "ml.m5.xlarge", "ml.g4dn.xlarge"]
    assert [o.rank for o in r.options] == [1, 2, 3]
    assert r.recommended is not None and r.recommended.instance_type == "ml.c5.xlarge"
    assert r.tied == []
    assert "Next cheapest: ml.m5.xlarge" in r.explanation


def test_tie_within_one_percent_broken_by_cost_at_min() -> None:
    # Both 2 instances at max (0.400 vs 0.402 $/h, 0.5% apart); at 30 rps min with target
    # 25 rps/instance, A needs 2, while B (capacity 60, target 30) needs 1.
    summaries = [summary("ml.a.xlarge", rps=50), summary("ml.b.xlarge", rps=60)]
    prices = {"ml.a.xlarge": 0.200, "ml.b.xlarge": 0.201}
    r = recommend(summaries, Traffic(min_rps=30, max_rps=100), 0.5, prices)
    assert r.recommended is not None and r.recommended.instance_type == "ml.b.xlarge"
    assert sorted(r.tied) == ["ml.a.xlarge", "ml.b.xlarge"]
    assert "Tie" in r.explanation and "cheaper at min traffic" in r.explanation


def test_tie_broken_by_headroom() -> None:
    # Same price, same fleets: B has more capacity, hence more headroom at the peak.
    summaries = [summary("ml.a.xlarge", rps=50), summary("ml.b.xlarge", rps=80)]
    prices = {"ml.a.xlarge": 0.2, "ml.b.xlarge": 0.2}
    r = recommend(summaries, Traffic(min_rps=1, max_rps=100), 0.5, prices)
    assert r.recommended is not None and r.recommended.instance_type == "ml.b.xlarge"
    assert "headroom" in r.explanation


def test_exact_tie_broken_by_name() -> None:
    summaries = [summary("ml.z.xlarge"), summary("ml.a.xlarge")]
    r = recommend(summaries, T, 0.5, {"ml.z.xlarge": 0.2, "ml.a.xlarge": 0.2})
    assert r.recommended is not None and r.recommended.instance_type == "ml.a.xlarge"
    assert "by name" in r.explanation


def test_two_percent_apart_is_not_a_tie() -> None:
    summaries = [summary("ml.a.xlarge"), summary("ml.b.xlarge")]
    r = recommend(summaries, T, 0.5, {"ml.a.xlarge": 0.200, "ml.b.xlarge": 0.204})
    assert r.tied == []
    assert r.recommended is not None and r.recommended.instance_type == "ml.a.xlarge"


# --- latency objective --------------------------------------------------------------------------


def test_latency_objective_met_at_the_highest_passing_step() -> None:
    s = summary(steps=[step(25, True, latency=80), step(50, True, latency=190), step(70, False)])
    objective = Objective(latency_percentile=99, max_latency_ms=200)
    best = recommend([s], T, 0.5, {"ml.c5.xlarge": 0.2}, objective).recommended
    assert best is not None and best.meets_latency_objective is True


def test_no_latency_objective_gives_none() -> None:
    best = recommend([summary()], T, 0.5, {"ml.c5.xlarge": 0.2}).recommended
    assert best is not None and best.meets_latency_objective is None


# --- JSON ---------------------------------------------------------------------------------------


def test_recommendation_round_trips_as_json() -> None:
    r = recommend([summary(), failed("ml.g5.xlarge")], T, 0.5, {"ml.c5.xlarge": 0.2})
    again = Recommendation.model_validate_json(r.model_dump_json())
    assert again == r
