"""After the Map: record failed types, recommend, write the report, shape the execution's output.

For every type the Map reported failed, ``summary.json`` gets a failed ``TypeSummary`` (stage and
reason), so the report lists it like the local mode does. A type whose load test "succeeded" but
left no summary is failed too. If no type succeeded the run is failed: ``finish`` returns
``status: failed`` with a cause, and the state machine ends in a Fail state (never SUCCEEDED with
an empty output).

The run is compared with the previous successful run of the same name (``rightsizer.results``);
a regression is published (``rightsizer.aws.alerts``) when ``alerts`` are given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rightsizer.aws.alerts import publish_regression
from rightsizer.aws.events import FinishEvent, ItemResult
from rightsizer.aws.failures import cleanup_problems, reason_for
from rightsizer.aws.outcomes import item_results
from rightsizer.history import RunDiff
from rightsizer.results import write_results
from rightsizer.s3 import S3ReadError
from rightsizer.schema import BenchmarkInput
from rightsizer.store import (
    INPUT,
    RECOMMENDATION,
    REPORT,
    SUMMARY,
    S3RunStore,
    read_json,
    read_summaries,
    write_summary,
)
from rightsizer.summary import TypeSummary, failed_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alerts:
    """Where a regression is told: EventBridge's default bus, and an SNS topic if one is set."""

    events: Any
    sns: Any
    topic_arn: str = ""


def finish_run(event: FinishEvent, *, s3: Any, alerts: Alerts | None = None) -> dict[str, Any]:
    run = event.run
    store = S3RunStore(run.results_uri, run.run_id, s3)
    # Priced in the stack's region (as Validate did), whatever input.json defaulted to.
    bench = BenchmarkInput.model_validate(read_json(store, INPUT)).model_copy(
        update={"region": run.region}
    )
    keys = set(store.list_keys())

    problems: list[str] = []
    for result in item_results(store, event.outcomes):
        _record(store, result, keys)
        problems.extend(cleanup_problems(result.instance_type, result.cleanup))

    summaries = read_summaries(store)
    listed = {r.instance_type for r in event.outcomes}
    summaries = [s for s in summaries if s.instance_type in listed]
    succeeded = [s for s in summaries if s.status == "succeeded"]
    failed = [
        {"instance_type": s.instance_type, "stage": s.failed_stage, "reason": s.reason}
        for s in summaries
        if s.status == "failed"
    ]

    conclusion = write_results(store, bench, summaries, event.prices)
    recommendation = conclusion.recommendation
    report_uri = store.uri(REPORT)

    output: dict[str, Any] = {
        "run_id": run.run_id,
        "results_uri": store.uri(),
        "input_uri": store.uri(INPUT),
        "recommendation_uri": store.uri(RECOMMENDATION),
        "report_uri": report_uri,
        "tested_types": [s.instance_type for s in succeeded],
        "failed_types": failed,
        "cleanup_problems": problems,
        "notes": list(run.notes),
        "worst_case_cost_usd": run.worst_case_cost_usd,
    }
    if conclusion.since_last_run is not None:
        output["since_last_run"] = _since_last_run(
            conclusion.since_last_run, report_uri, run.execution_arn, alerts
        )
    best = recommendation.recommended
    if best is not None:
        output["recommended"] = {
            "instance_type": best.instance_type,
            "instance_count_at_min": best.instances_at_min,
            "instance_count_at_max": best.instances_at_max,
            "monthly_cost_usd_at_min": _round(best.monthly_cost_at_min),
            "cost_per_hour_usd_at_max": _round(best.cost_per_hour_at_max),
            "capacity_rps_per_instance": _round(best.capacity_per_instance),
        }
        output["explanation"] = recommendation.explanation

    if not succeeded:
        reasons = "; ".join(f"{f['instance_type']} ({f['stage']}): {f['reason']}" for f in failed)
        return {
            "status": "failed",
            "error": "NoInstanceTypeSucceeded",
            "cause": (
                f"no instance type was measured: {reasons or 'no types ran'}. "
                f"Report: {report_uri}"
            )[:32000],
            "output": output,
        }
    if best is None:
        output["explanation"] = recommendation.explanation
    return {"status": "succeeded", "output": output}


def _since_last_run(
    diff: RunDiff, report_uri: str, execution_arn: str, alerts: Alerts | None
) -> dict[str, Any]:
    """The comparison in the execution's output; a regression is published first."""
    problems: list[str] = []
    if diff.regressed and alerts is not None:
        problems = publish_regression(diff, report_uri, execution_arn, events=alerts.events,
                                      sns=alerts.sns, topic_arn=alerts.topic_arn)
    return {
        "previous_run_id": diff.old.run_id,
        "regressed": diff.regressed,
        "regressions": list(diff.regressions),
        "alert_problems": problems,
    }


def _record(store: S3RunStore, result: ItemResult, keys: set[str]) -> None:
    """Make sure ``<type>/summary.json`` tells this item's outcome."""
    key = f"{result.instance_type}/{SUMMARY}"
    outcome = result.outcome
    existing = _read_summary(store, key) if key in keys else None
    if outcome.status == "succeeded":
        if existing is not None:
            return
        summary = _failed(
            result, "load_test",
            "the load generator finished but left no readable summary.json; see its task logs"
            + (f" ({outcome.task_arn})" if outcome.task_arn else ""),
        )
    else:
        stage = outcome.stage or "unknown"
        reason = reason_for(outcome)
        if existing is not None and existing.status == "failed" and existing.reason:
            # The container wrote its own failure, which knows more than ECS's exit code.
            reason = f"{existing.reason} ({reason})"
        # Steps measured before the failure are kept.
        steps = existing.steps if existing is not None else []
        summary = _failed(result, stage, reason, steps=steps)
    write_summary(store, summary)


def _failed(result: ItemResult, stage: str, reason: str, **fields: object) -> TypeSummary:
    return failed_summary(result.instance_type, result.instance_count, stage, reason, **fields)


def _read_summary(store: S3RunStore, key: str) -> TypeSummary | None:
    try:
        return TypeSummary.model_validate_json(store.read_bytes(key))
    except (ValidationError, ValueError, S3ReadError) as exc:
        log.warning("ignoring unreadable %s: %s", key, exc)
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
