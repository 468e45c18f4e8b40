"""From measured capacity to a recommendation: instance counts, cost, autoscaling. Pure, no I/O.

Definitions (all per instance type):

* capacity = ``max_sustainable_rps / instance_count``: the highest rate one instance kept up with
  while meeting the objective. Scaling is assumed linear in the instance count.
* The recommended autoscaling policy is target tracking on
  ``SageMakerVariantInvocationsPerInstance`` with ``TargetValue = capacity x safety_factor x 60``
  (invocations per minute per instance), as AWS advises: the target holds the safety margin.
* ``MinCapacity = ceil(min_rps / (capacity x safety_factor))``: the fleet target tracking settles
  on at the lowest traffic, because it will not scale in past its target.
* ``MaxCapacity = max(MinCapacity, ceil(max_rps / capacity))``: enough to serve the peak at full
  measured capacity, which still meets the objective, and no more. ``max_capacity_at_target`` says
  how many instances would keep the target utilisation even at the peak, for users who want that.
* Costs are those of the fleet the policy runs: ``MinCapacity`` instances at min traffic,
  ``MaxCapacity`` at max traffic. Cost per million inferences is at max traffic.
* For text generation, cost per million output tokens is also at max traffic: the fleet's cost
  per hour over ``max_rps x tokens per request x 3600``, tokens per request being the mean of
  the requests completed in the highest passing step.

Instance counts are always rounded up, never 0. A quotient is rounded to ``CEIL_DECIMALS``
before ``ceil`` so that float noise (100/50 = 2.0000000000000004) does not add an instance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rightsizer.schema import BenchmarkInput, Objective, Traffic
from rightsizer.summary import StepResult, TypeSummary

HOURS_PER_MONTH = 730.0
CEIL_DECIMALS = 9
TIE_TOLERANCE = 0.01
SCALE_IN_COOLDOWN_SECONDS = 300  # scale in slowly: a dip is often followed by a rise
SCALE_OUT_COOLDOWN_SECONDS = 60  # scale out fast: an overload costs requests
METRIC = "SageMakerVariantInvocationsPerInstance"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
LOWER_BOUND_BOTTLENECKS = {
    "load-generator": "the load generator ran out of capacity before the endpoint did",
    "rate-limit": "the offered rate reached the load settings' max_rps before the endpoint failed",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AutoscalingPolicy(_Model):
    metric: str = METRIC
    target_value: float = Field(description="Invocations per minute per instance.")
    min_capacity: int
    max_capacity: int
    max_capacity_at_target: int = Field(
        description="Instances that keep the target utilisation at max_rps (more headroom)."
    )
    scale_in_cooldown_seconds: int = SCALE_IN_COOLDOWN_SECONDS
    scale_out_cooldown_seconds: int = SCALE_OUT_COOLDOWN_SECONDS
    safety_factor: float

    def register_scalable_target(
        self, endpoint_name: str = "<endpoint-name>", variant: str = "AllTraffic"
    ) -> dict[str, Any]:
        """``aws application-autoscaling register-scalable-target --cli-input-json``."""
        return {
            "ServiceNamespace": "sagemaker",
            "ResourceId": f"endpoint/{endpoint_name}/variant/{variant}",
            "ScalableDimension": SCALABLE_DIMENSION,
            "MinCapacity": self.min_capacity,
            "MaxCapacity": self.max_capacity,
        }

    def put_scaling_policy(
        self,
        endpoint_name: str = "<endpoint-name>",
        variant: str = "AllTraffic",
        policy_name: str = "rightsizer-invocations-target",
    ) -> dict[str, Any]:
        """``aws application-autoscaling put-scaling-policy --cli-input-json``."""
        return {
            "PolicyName": policy_name,
            "ServiceNamespace": "sagemaker",
            "ResourceId": f"endpoint/{endpoint_name}/variant/{variant}",
            "ScalableDimension": SCALABLE_DIMENSION,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": self.target_value,
                "PredefinedMetricSpecification": {"PredefinedMetricType": self.metric},
                "ScaleInCooldown": self.scale_in_cooldown_seconds,
                "ScaleOutCooldown": self.scale_out_cooldown_seconds,
            },
        }


class TokenFigures(_Model):
    """A generative endpoint's figures at the highest passing step, per instance."""

    output_tokens_per_second: float = Field(description="Per instance, at its capacity.")
    tokens_per_request: float = Field(description="Mean output tokens of a completed request.")
    counted: str = Field(description="'reported' by the container or 'approximate' (text).")
    ttft_p50_ms: float | None = None
    ttft_p90_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p99_ms: float | None = None
    request_tokens_per_second_p50: float | None = None


class TypeOption(_Model):
    instance_type: str
    status: Literal["viable", "not_viable"]
    rank: int | None = Field(None, description="1 = recommended; None when not viable.")
    reasons: list[str] = Field(default_factory=list, description="Why it is not viable.")
    notes: list[str] = Field(default_factory=list)
    instance_count_tested: int
    max_sustainable_rps: float
    capacity_per_instance: float
    capacity_is_lower_bound: bool = False
    bottleneck: str | None = None
    price_per_hour: float | None = None
    instances_at_min: int | None = Field(None, description="Fleet at min_rps (MinCapacity).")
    instances_at_max: int | None = Field(None, description="Fleet at max_rps (MaxCapacity).")
    instances_needed_at_min: int | None = Field(
        None, description="ceil(min_rps / capacity): the bare minimum at full capacity."
    )
    instances_needed_at_max: int | None = Field(None, description="ceil(max_rps / capacity).")
    cost_per_hour_at_min: float | None = None
    cost_per_hour_at_max: float | None = None
    monthly_cost_at_min: float | None = Field(None, description=f"{HOURS_PER_MONTH:g} h at min.")
    cost_per_million_inferences: float | None = Field(None, description="At max_rps.")
    headroom_at_max: float | None = Field(
        None, description="Spare capacity at max_rps, 0.25 = 25% above the peak."
    )
    meets_latency_objective: bool | None = Field(None, description="None: no latency objective.")
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    tokens: TokenFigures | None = Field(None, description="Only for text generation.")
    cost_per_million_output_tokens: float | None = Field(
        None, description="At max_rps, with tokens.tokens_per_request per request."
    )
    autoscaling: AutoscalingPolicy | None = None


class Recommendation(_Model):
    """``recommendation.json``."""

    schema_version: int = 1
    recommended: TypeOption | None
    options: list[TypeOption] = Field(description="Viable types by rank, then the others.")
    min_rps: float
    max_rps: float
    safety_factor: float
    hours_per_month: float = HOURS_PER_MONTH
    tied: list[str] = Field(
        default_factory=list, description="Types within 1% of the cheapest at max traffic."
    )
    explanation: str = Field(description="Plain words, one statement per line.")


# --- arithmetic ---------------------------------------------------------------------------------


def instances_needed(rate_rps: float, capacity_rps: float) -> int:
    """Instances of ``capacity_rps`` each that serve ``rate_rps``: rounded up, at least 1."""
    if not (math.isfinite(capacity_rps) and capacity_rps > 0):
        raise ValueError(f"capacity must be a positive number, got {capacity_rps!r}")
    if rate_rps <= 0:
        return 1
    return max(1, math.ceil(round(rate_rps / capacity_rps, CEIL_DECIMALS)))


def target_value(capacity_rps: float, safety_factor: float) -> float:
    """Target invocations per minute per instance for target tracking."""
    # Floor at 1e-6 so that a minute capacity never rounds to a zero target (a division by 0).
    return max(round(capacity_rps * safety_factor * 60.0, 6), 1e-6)


def autoscaling_policy(
    capacity_rps: float, min_rps: float, max_rps: float, safety_factor: float
) -> AutoscalingPolicy:
    target = target_value(capacity_rps, safety_factor)
    target_rps = target / 60.0  # use the rounded target, the one AWS will track
    min_capacity = instances_needed(min_rps, target_rps)
    max_capacity = max(min_capacity, instances_needed(max_rps, capacity_rps))
    return AutoscalingPolicy(
        target_value=target,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        max_capacity_at_target=max(max_capacity, instances_needed(max_rps, target_rps)),
        safety_factor=safety_factor,
    )


# --- one type -----------------------------------------------------------------------------------


def evaluate(
    summary: TypeSummary,
    min_rps: float,
    max_rps: float,
    safety_factor: float,
    price_per_hour: float | None,
    objective: Objective | None = None,
) -> TypeOption:
    """Size and cost one type, or say why it is not viable."""
    count = summary.instance_count
    capacity = summary.max_sustainable_rps / count if count >= 1 else 0.0
    top = _highest_passing_step(summary.steps)
    base = TypeOption(
        instance_type=summary.instance_type,
        status="not_viable",
        instance_count_tested=count,
        max_sustainable_rps=summary.max_sustainable_rps,
        capacity_per_instance=capacity if math.isfinite(capacity) else 0.0,
        bottleneck=summary.bottleneck,
        price_per_hour=price_per_hour,
        meets_latency_objective=_meets_latency(summary, top, objective),
        p50_ms=summary.p50_ms if summary.p50_ms is not None else (top.p50_ms if top else None),
        p95_ms=summary.p95_ms if summary.p95_ms is not None else (top.p95_ms if top else None),
        p99_ms=summary.p99_ms if summary.p99_ms is not None else (top.p99_ms if top else None),
        tokens=token_figures(top, count),
        notes=list(summary.notes),
    )
    reasons = _not_viable_reasons(summary, capacity, price_per_hour, base.meets_latency_objective)
    if reasons:
        return base.model_copy(update={"reasons": reasons})
    assert price_per_hour is not None  # checked by _not_viable_reasons
    return _viable(base, capacity, min_rps, max_rps, safety_factor, price_per_hour)


def _viable(
    base: TypeOption,
    capacity: float,
    min_rps: float,
    max_rps: float,
    safety_factor: float,
    price: float,
) -> TypeOption:
    policy = autoscaling_policy(capacity, min_rps, max_rps, safety_factor)
    cost_min = policy.min_capacity * price
    cost_max = policy.max_capacity * price
    notes = list(base.notes)
    lower_bound = base.bottleneck in LOWER_BOUND_BOTTLENECKS
    if lower_bound:
        notes.append(
            f"Capacity is a lower bound: {LOWER_BOUND_BOTTLENECKS[str(base.bottleneck)]}. "
            f"One instance sustains at least {capacity:.4g} rps; fewer instances may do."
        )
    return base.model_copy(
        update={
            "status": "viable",
            "notes": notes,
            "capacity_is_lower_bound": lower_bound,
            "instances_at_min": policy.min_capacity,
            "instances_at_max": policy.max_capacity,
            "instances_needed_at_min": instances_needed(min_rps, capacity),
            "instances_needed_at_max": instances_needed(max_rps, capacity),
            "cost_per_hour_at_min": cost_min,
            "cost_per_hour_at_max": cost_max,
            "monthly_cost_at_min": cost_min * HOURS_PER_MONTH,
            "cost_per_million_inferences": cost_max / (max_rps * 3600.0) * 1e6,
            "cost_per_million_output_tokens": _per_million_tokens(base.tokens, cost_max, max_rps),
            "headroom_at_max": policy.max_capacity * capacity / max_rps - 1.0,
            "autoscaling": policy,
        }
    )


def token_figures(top: StepResult | None, instance_count: int) -> TokenFigures | None:
    """Token figures of the highest passing step, the throughput per instance."""
    tokens = top.tokens if top is not None else None
    if top is None or tokens is None or top.achieved_rps <= 0 or instance_count < 1:
        return None
    return TokenFigures(
        output_tokens_per_second=tokens.output_tokens_per_second / instance_count,
        tokens_per_request=tokens.output_tokens_per_second / top.achieved_rps,
        counted=tokens.counted,
        ttft_p50_ms=tokens.ttft_p50_ms,
        ttft_p90_ms=tokens.ttft_p90_ms,
        ttft_p99_ms=tokens.ttft_p99_ms,
        itl_p50_ms=tokens.itl_p50_ms,
        itl_p99_ms=tokens.itl_p99_ms,
        request_tokens_per_second_p50=tokens.request_tokens_per_second_p50,
    )


def _per_million_tokens(
    tokens: TokenFigures | None, cost_per_hour: float, rps: float
) -> float | None:
    """The fleet's cost per hour over the output tokens it serves in that hour, per million."""
    if tokens is None or tokens.tokens_per_request <= 0:
        return None
    return cost_per_hour / (rps * tokens.tokens_per_request * 3600.0) * 1e6


def _not_viable_reasons(
    summary: TypeSummary, capacity: float, price: float | None, meets_latency: bool | None
) -> list[str]:
    if summary.status == "failed":
        stage = f" at {summary.failed_stage}" if summary.failed_stage else ""
        return [f"failed{stage}: {summary.reason or 'no reason given'}"]
    reasons = []
    if summary.instance_count < 1:
        reasons.append(f"instance_count {summary.instance_count} is not a fleet size")
    elif not (math.isfinite(capacity) and capacity > 0):
        first = summary.steps[0] if summary.steps else None
        detail = ""
        if first is not None and first.reasons:
            detail = f" (first step at {first.target_rps:g} rps: {'; '.join(first.reasons)})"
        reasons.append(f"no load level met the objective: capacity is 0{detail}")
    elif meets_latency is False:
        reasons.append("the highest passing step is above the latency objective")
    if price is None or not price > 0:
        reasons.append('no price: add it to the input\'s "prices" (USD per instance-hour)')
    return reasons


def _highest_passing_step(steps: Sequence[StepResult]) -> StepResult | None:
    passed = [s for s in steps if s.passed]
    return max(passed, key=lambda s: (s.target_rps, s.achieved_rps)) if passed else None


def _meets_latency(
    summary: TypeSummary, top: StepResult | None, objective: Objective | None
) -> bool | None:
    if objective is None or objective.max_latency_ms is None:
        return None
    if summary.status != "succeeded" or summary.max_sustainable_rps <= 0:
        return False
    if top is not None and top.latency_objective_ms is not None:
        return top.latency_objective_ms <= objective.max_latency_ms
    # The load engine passes a step only if it meets the objective, latency included.
    return True


# --- all types ----------------------------------------------------------------------------------


def recommend(
    summaries: Sequence[TypeSummary],
    traffic: Traffic,
    safety_factor: float,
    prices: Mapping[str, float],
    objective: Objective | None = None,
) -> Recommendation:
    """Rank every type, pick the cheapest viable one and explain the choice."""
    min_rps, max_rps = traffic.min_rps, traffic.max_rps
    if not (0 < safety_factor <= 1):
        raise ValueError(f"safety_factor must be in (0, 1], got {safety_factor}")
    options = [
        evaluate(s, min_rps, max_rps, safety_factor, prices.get(s.instance_type), objective)
        for s in summaries
    ]
    viable = sorted((o for o in options if o.status == "viable"), key=_rank_key)
    tied = [o for o in viable if _within(o.cost_per_hour_at_max, viable[0].cost_per_hour_at_max)]
    winner, tie_reason = _break_tie(tied) if len(tied) > 1 else (viable[0] if viable else None, "")
    ordered = ([winner] if winner else []) + [o for o in viable if o is not winner]
    ranked = [o.model_copy(update={"rank": i}) for i, o in enumerate(ordered, start=1)]
    rejected = [o for o in options if o.status != "viable"]
    recommended = ranked[0] if ranked else None
    return Recommendation(
        recommended=recommended,
        options=ranked + rejected,
        min_rps=min_rps,
        max_rps=max_rps,
        safety_factor=safety_factor,
        tied=[o.instance_type for o in tied] if len(tied) > 1 else [],
        explanation=_explain(recommended, ranked, rejected, tie_reason, min_rps, max_rps),
    )


def recommend_for_input(
    benchmark_input: BenchmarkInput, summaries: Sequence[TypeSummary], prices: Mapping[str, float]
) -> Recommendation:
    """``recommend`` for a whole input; a type without any summary is listed as not viable."""
    seen = {s.instance_type for s in summaries}
    missing = [
        TypeSummary(
            instance_type=spec.instance_type,
            instance_count=spec.count,
            status="failed",
            reason="no result: the run wrote no summary for this type",
        )
        for spec in benchmark_input.specs
        if spec.instance_type not in seen
    ]
    return recommend(
        [*summaries, *missing],
        benchmark_input.traffic,
        benchmark_input.safety_factor,
        prices,
        benchmark_input.objective,
    )


def _rank_key(o: TypeOption) -> tuple[float, float, float, str]:
    return (
        o.cost_per_hour_at_max or math.inf,
        o.cost_per_hour_at_min or math.inf,
        -(o.headroom_at_max or 0.0),
        o.instance_type,
    )


def _within(value: float | None, best: float | None, tolerance: float = TIE_TOLERANCE) -> bool:
    return value is not None and best is not None and value <= best * (1 + tolerance)


def _break_tie(tied: list[TypeOption]) -> tuple[TypeOption, str]:
    """Among types within 1% at max traffic: cheaper at min traffic, more headroom, name."""
    cheapest_min = min(o.cost_per_hour_at_min or math.inf for o in tied)
    by_min = [o for o in tied if _within(o.cost_per_hour_at_min, cheapest_min)]
    if len(by_min) < len(tied):
        winner = min(by_min, key=_rank_key)
        return winner, f"{winner.instance_type} is cheaper at min traffic"
    most = max(o.headroom_at_max or 0.0 for o in by_min)
    by_headroom = [o for o in by_min if (o.headroom_at_max or 0.0) >= most - 1e-9]
    winner = min(by_headroom, key=lambda o: o.instance_type)
    if len(by_headroom) < len(by_min):
        return winner, f"{winner.instance_type} has the most headroom at max traffic"
    return winner, (
        f"they are also even at min traffic and in headroom; {winner.instance_type} "
        "comes first by name"
    )


# --- words --------------------------------------------------------------------------------------


def _explain(
    best: TypeOption | None,
    ranked: list[TypeOption],
    rejected: list[TypeOption],
    tie_reason: str,
    min_rps: float,
    max_rps: float,
) -> str:
    parts: list[str] = []
    if best is None:
        parts.append("No instance type is viable, so there is nothing to recommend.")
        parts.extend(_rejected_lines(rejected))
        parts.append(
            "Try larger instance types, a lower start_rps, or a looser objective, "
            "and read each type's failure above."
        )
        return "\n".join(parts)
    parts.append(_summary_line(best, min_rps, max_rps))
    tied = [o for o in ranked[1:] if _within(o.cost_per_hour_at_max, best.cost_per_hour_at_max)]
    if tied:
        names = ", ".join(f"{o.instance_type} (${o.cost_per_hour_at_max:.4f}/h)" for o in tied)
        parts.append(
            f"Tie: {names} cost within {TIE_TOLERANCE:.0%} of {best.instance_type} "
            f"(${best.cost_per_hour_at_max:.4f}/h) at max traffic; chosen because {tie_reason}."
        )
    elif len(ranked) > 1:
        nxt = ranked[1]
        extra = (nxt.cost_per_hour_at_max or 0) / (best.cost_per_hour_at_max or 1) - 1
        parts.append(
            f"Next cheapest: {nxt.instance_type} at ${nxt.cost_per_hour_at_max:.4f}/h "
            f"at max traffic ({extra:+.0%})."
        )
    for o in ranked:
        if o.capacity_is_lower_bound:
            parts.append(
                f"{o.instance_type}: measured capacity is a lower bound "
                f"(bottleneck: {o.bottleneck}); its true cost may be lower than shown."
            )
    parts.extend(_rejected_lines(rejected))
    parts.append(
        "Costs are for the fleet the autoscaling policy runs: MinCapacity instances at min "
        "traffic (target utilisation = safety factor), MaxCapacity at max traffic (up to full "
        "measured capacity)."
    )
    return "\n".join(parts)


def _summary_line(best: TypeOption, min_rps: float, max_rps: float) -> str:
    policy = best.autoscaling
    assert policy is not None
    return (
        f"Recommended: {best.instance_type}, {best.instances_at_min} instance(s) at "
        f"{min_rps:g} rps, scaling up to {best.instances_at_max} at {max_rps:g} rps; "
        f"${best.cost_per_hour_at_min:.4f}/h at min traffic "
        f"(${best.monthly_cost_at_min:,.2f}/month), ${best.cost_per_hour_at_max:.4f}/h at max, "
        f"${best.cost_per_million_inferences:.4f} per million inferences at max. One instance "
        f"sustains {best.capacity_per_instance:.4g} rps (measured with "
        f"{best.instance_count_tested}); autoscaling targets {policy.target_value:g} "
        f"invocations per minute per instance (safety factor {policy.safety_factor:g})."
    )


def _rejected_lines(rejected: list[TypeOption]) -> list[str]:
    return [f"Not viable: {o.instance_type}: {'; '.join(o.reasons)}." for o in rejected]
