"""Step Functions' hard limits (256 KiB per state, 25,000 history events), checked up front.

``rightsizer.aws.limits`` counts the worst case for an input; these tests hold that count to
the ASL (retry counts, state by state) and to the real interpreter's history, and show that
Validate refuses, naming the fields to change, an input that could pass either limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import Fault

from rightsizer.aws import limits
from rightsizer.aws.validate import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "rightsize.asl.json").read_text())


def _tasks(states: dict[str, Any]):
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        if "ItemProcessor" in state:
            yield from _tasks(state["ItemProcessor"]["States"])


def test_retry_counts_are_the_asls():
    tasks = dict(_tasks(ASL["States"]))
    assert set(limits.RETRIES) == set(tasks)
    for name, state in tasks.items():
        assert limits.RETRIES[name] == sum(r["MaxAttempts"] for r in state.get("Retry", [])), name
        assert (name in limits.SYNC_TASKS) == state["Resource"].endswith(".sync"), name


def test_default_stack_worst_case_fits_thirteen_types_not_fourteen():
    max_polls = -(-2700 // 60)  # template defaults: DeployTimeoutSeconds / PollSeconds
    assert limits.worst_case_events(13, max_polls) <= limits.MAX_HISTORY_EVENTS
    assert limits.worst_case_events(14, max_polls) > limits.MAX_HISTORY_EVENTS
    problem = limits.history_problem(20, max_polls, 60, create_model=True)
    assert problem is not None and problem.startswith("instance_types: 20 types")
    assert "at most 13 types" in problem and "PollSeconds" in problem


# --- against the interpreter's history ------------------------------------------------------------


def _events(stack: Any, arn: str) -> int:
    pages = stack.sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    return sum(len(page["events"]) for page in pages)


def _run(stack: Any, make_input: Any, *, polls: int = 0, delete_refusals: int = 0) -> int:
    kind = "ml.c5.xlarge"
    stack.scenario.creating_polls[kind] = polls
    if delete_refusals:
        stack.scenario.faults.append(Fault(
            "delete_endpoint", kind, "ValidationException",
            "Cannot update in-progress endpoint", times=delete_refusals))
    arn = stack.start(make_input(kind))
    described = stack.wait(arn)
    assert described["status"] == "SUCCEEDED", described
    return _events(stack, arn)


# moto answers Creating until the polls-th DescribeEndpoint: polls - 1 loops back, as ASL counts.
@pytest.mark.parametrize("polls", [0, 2, 4])
def test_count_matches_the_interpreters_history_with_polls(stack, payload, make_input, polls):
    """The count for a path is exactly what the interpreter records for it."""
    path = limits.IterationPath(polls=max(0, polls - 1), retries={})
    assert _run(stack, make_input, polls=polls) == limits.execution_events([path], retries={})


def test_count_matches_the_interpreters_history_with_retries(stack, payload, make_input):
    """CreateModel throttled twice (as SageMaker.SageMakerException): both retries counted."""
    stack.scenario.faults.append(
        Fault("create_model", "ml.c5.xlarge", "ThrottlingException", "Rate exceeded", times=2))
    path = limits.IterationPath(polls=0, retries={"CreateModel": 2})
    assert _run(stack, make_input) == limits.execution_events([path], retries={})


@pytest.mark.parametrize("refusals", [1, 2, 3])
def test_count_matches_the_interpreters_history_through_the_delete_loop(stack, payload,
                                                                          make_input, refusals):
    """SageMaker refuses DeleteEndpoint ("Cannot update in-progress endpoint"): the loop checks,
    waits and deletes again until it succeeds."""
    path = limits.IterationPath(polls=0, delete_refusals=refusals, retries={})
    observed = _run(stack, make_input, delete_refusals=refusals)
    assert observed == limits.execution_events([path], retries={})


# --- Validate refuses what could pass a limit -----------------------------------------------------



def test_validate_refuses_an_input_whose_history_could_pass_25000_events(
    validate, make_input, monkeypatch
):
    # The default stack: 60 s polls for up to 2700 s.
    monkeypatch.setenv("RIGHTSIZER_POLL_SECONDS", "60")
    monkeypatch.setenv("RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS", "2700")
    types = [f"ml.{family}.{size}" for family in ("c5", "m5", "r5", "c6i", "m6i")
             for size in ("large", "xlarge", "2xlarge")]
    with pytest.raises(Exception) as raised:
        validate(make_input(*types[:14], concurrency=4))
    assert "instance_types: 14 types could write up to" in str(raised.value)
    assert validate(make_input(*types[:13], concurrency=4))["items"]


def _largest_input(make_input: Any, types: int, payloads: int, env: int) -> dict[str, Any]:
    """As large as the schema allows, field by field."""
    data = make_input(*[f"ml.c5.{n}xlarge" for n in range(2, 2 + types)])
    data["payloads"] = [
        {"path": f"payloads/{'p' * 200}-{i}.bin", "content_type": "application/" + "x" * 100,
         "accept": "application/" + "y" * 100}
        for i in range(payloads)
    ]
    data["model"]["environment"] = {f"V{i:03d}" + "K" * 1000: "v" * 1024 for i in range(env)}
    data["prices"] = {t: 1.0 for t in data["instance_types"]}
    return data


@pytest.mark.parametrize(("payloads", "env"), [(20, 100), (12, 100), (12, 60), (12, 0), (1, 0)])
def test_no_input_the_schema_accepts_gets_a_plan_over_256_kib(validate, make_input, s3,
                                                              payloads, env):
    """The largest inputs the schema accepts (20 types, long payload entries, SageMaker's
    largest container environment): Validate either plans within the limit, with room for every
    iteration's record and error causes, or refuses naming the fields to change."""
    data = _largest_input(make_input, types=20, payloads=payloads, env=env)
    for spec in data["payloads"]:
        s3.put_object(Bucket="rightsizer-results-test", Key=spec["path"], Body=b"x")
    try:
        plan = validate(data)
    except InvalidInput as exc:
        assert str(exc).split(":")[0] in REFUSED_FIELDS, exc
        return
    items = plan["items"]
    assert limits.json_bytes(plan) + len(items) * limits.ITEM_RECORD_BYTES <= limits.MAX_STATE_BYTES
    iteration = (max(map(limits.json_bytes, items)) + limits.json_bytes(plan["run"])
                 + limits.json_bytes(plan["model"]) + limits.ITERATION_SLACK_BYTES)
    assert iteration <= limits.MAX_STATE_BYTES


REFUSED_FIELDS = {"payloads", "instance_types, payloads", "model.environment, payloads"}


def test_the_largest_inputs_are_refused_for_the_state_limit_not_by_luck(validate, make_input,
                                                                       s3):
    data = _largest_input(make_input, types=20, payloads=12, env=100)
    for spec in data["payloads"]:
        s3.put_object(Bucket="rightsizer-results-test", Key=spec["path"], Body=b"x")
    with pytest.raises(InvalidInput, match=r"model\.environment, payloads: one type's state"):
        validate(data)


def test_state_problems_bounds_both_states():
    item = {"x": "a" * 10_000}
    plan = {"run": {}, "model": {}, "items": [item] * 30, "prices": {}}
    assert limits.state_problems(plan)[0].startswith("instance_types, payloads:")
    plan = {"run": {}, "model": {"e": "b" * 200_000}, "items": [item], "prices": {}}
    assert limits.state_problems(plan)[-1].startswith("model.environment, payloads:")
    assert limits.state_problems({"run": {}, "model": {}, "items": [item] * 3, "prices": {}}) == []
