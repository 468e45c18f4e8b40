"""The load generator is proven before any endpoint exists: CheckLoadGenerator in the real ASL."""

from __future__ import annotations

import json

from harness import CapacityFailure

# The preflight task measures no instance type: the harness keys its faults by "".
PREFLIGHT = ""


def _failure(described: dict) -> tuple[str, str]:
    return described.get("error", ""), described.get("cause", "")


def test_a_load_generator_that_cannot_run_fails_the_execution_before_any_endpoint(
    stack, payload, make_input
):
    stack.scenario.preflight_fails["runtime"] = (
        "cannot connect to runtime.sagemaker.us-east-1.amazonaws.com:443 (timed out)")
    described = stack.run(make_input("ml.c5.xlarge", "ml.m5.xlarge"))
    assert described["status"] == "FAILED"
    error, cause = _failure(described)
    assert error == "LoadGeneratorUnavailable"
    assert "no endpoint was created" in cause and "Subnets" in cause and "preflight/" in cause
    assert stack.leftovers() == {"models": [], "endpoint_configs": [], "endpoints": []}
    assert not stack.scenario.loadgen_runs and not stack.scenario.smoke_calls
    report = next(k for k in stack.keys("runs/") if k.endswith("/preflight/loadgen.json"))
    checks = {c["name"]: c["ok"] for c in stack.read_json(report)["checks"]}
    assert checks["runtime"] is False and checks["scratch"] is True


def test_no_fargate_capacity_at_preflight_is_retried_then_fails_cleanly(stack, payload,
                                                                       make_input):
    stack.scenario.run_task_failures[PREFLIGHT] = CapacityFailure()  # every attempt
    described = stack.run(make_input("ml.c5.xlarge"))
    error, cause = _failure(described)
    assert (described["status"], error) == ("FAILED", "LoadGeneratorUnavailable")
    assert "AmazonECS.Unknown" in cause and "Capacity is unavailable" in cause
    assert stack.scenario.run_task_failures[PREFLIGHT].calls == 4  # first try + 3 retries
    assert stack.leftovers() == {"models": [], "endpoint_configs": [], "endpoints": []}


def test_a_passing_preflight_runs_once_with_only_where_to_write(stack, payload, make_input):
    described = stack.run(make_input("ml.c5.xlarge", "ml.m5.xlarge"))
    assert described["status"] == "SUCCEEDED", described
    assert len(stack.scenario.preflight_runs) == 1
    env = stack.scenario.preflight_runs[0]
    assert env["RIGHTSIZER_MODE"] == "preflight"
    assert "RIGHTSIZER_ENDPOINT_NAME" not in env
    output = json.loads(described["output"])
    assert sorted(output["tested_types"]) == ["ml.c5.xlarge", "ml.m5.xlarge"]
