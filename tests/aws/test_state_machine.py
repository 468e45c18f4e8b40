"""The real statemachine/rightsize.asl.json, executed by moto's interpreter (see conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import ACCOUNT, MAX_STATE_BYTES, Fault, Stack

THREE_TYPES = ("ml.c5.xlarge", "ml.m5.xlarge", "ml.g4dn.xlarge")


def output_of(described: dict[str, Any]) -> dict[str, Any]:
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def test_three_types_all_succeed(stack, payload, make_input):
    stack.scenario.capacity_rps.update({"ml.c5.xlarge": 20, "ml.m5.xlarge": 15,
                                        "ml.g4dn.xlarge": 120})
    described = stack.run(make_input(*THREE_TYPES))
    out = output_of(described)

    assert stack.leftovers() == {"models": [], "endpoint_configs": [], "endpoints": []}
    assert out["failed_types"] == []
    assert sorted(out["tested_types"]) == sorted(THREE_TYPES)
    assert out["recommended"]["instance_type"] in THREE_TYPES
    assert out["recommended"]["monthly_cost_usd_at_min"] > 0
    assert out["worst_case_cost_usd"] > 0
    run_id = out["run_id"]
    keys = stack.keys(f"runs/{run_id}/")
    for kind in THREE_TYPES:
        assert f"runs/{run_id}/{kind}/summary.json" in keys
        assert f"runs/{run_id}/{kind}/step_001_stats.csv" in keys
    for name in ("input.json", "recommendation.json", "report.html", "payloads/0"):
        assert f"runs/{run_id}/{name}" in keys
    assert out["report_uri"] == f"s3://{stack.bucket}/runs/{run_id}/report.html"
    assert len(stack.scenario.loadgen_runs) == 3
    # The history is read to its end (AWS pages it; the harness does too).
    history = stack.history(described["executionArn"])
    assert history[-1]["type"] == "ExecutionSucceeded"
    assert stack.count_history_events(described["executionArn"]) == len(history)
    # The smoke test sent the payload's exact bytes (binary, from the run's copy).
    sent = stack.s3.get_object(Bucket=stack.bucket, Key="payloads/cat.jpg")["Body"].read()
    assert stack.scenario.smoke_bodies == [sent] * 3


NOTHING = {"models": [], "endpoint_configs": [], "endpoints": []}


def failed_by_type(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["instance_type"]: f for f in out["failed_types"]}


def test_one_fails_to_deploy_one_fails_smoke_test(stack, payload, make_input):
    scenario = stack.scenario
    scenario.endpoint_fails["ml.c5.xlarge"] = (
        "The primary container for production variant AllTraffic did not pass the ping health "
        "check."
    )
    scenario.model_error["ml.m5.xlarge"] = (500, "CUDA error: no kernel image is available")
    scenario.capacity_rps["ml.g4dn.xlarge"] = 80
    described = stack.run(make_input(*THREE_TYPES))
    out = output_of(described)

    assert stack.leftovers() == NOTHING
    failed = failed_by_type(out)
    assert set(failed) == {"ml.c5.xlarge", "ml.m5.xlarge"}
    assert failed["ml.c5.xlarge"]["stage"] == "deploy"
    assert "did not pass the ping health check" in failed["ml.c5.xlarge"]["reason"]
    assert failed["ml.m5.xlarge"]["stage"] == "smoke_test"
    assert "500" in failed["ml.m5.xlarge"]["reason"]
    assert "CUDA error: no kernel image" in failed["ml.m5.xlarge"]["reason"]
    assert "/aws/sagemaker/Endpoints/" in failed["ml.m5.xlarge"]["reason"]  # where the logs are
    assert out["tested_types"] == ["ml.g4dn.xlarge"]
    assert out["recommended"]["instance_type"] == "ml.g4dn.xlarge"
    # Only the healthy type reached the load generator.
    assert [r["RIGHTSIZER_INSTANCE_TYPE"] for r in scenario.loadgen_runs] == ["ml.g4dn.xlarge"]
    # The report and the failed summaries tell the same story.
    run = f"runs/{out['run_id']}"
    for kind in ("ml.c5.xlarge", "ml.m5.xlarge"):
        summary = stack.read_json(f"{run}/{kind}/summary.json")
        assert summary["status"] == "failed"
        assert summary["failed_stage"] == failed[kind]["stage"]
    report = stack.s3.get_object(Bucket=stack.bucket, Key=f"{run}/report.html")["Body"].read()
    assert b"ping health check" in report and b"CUDA error" in report
    recommendation = stack.read_json(f"{run}/recommendation.json")
    assert recommendation["recommended"]["instance_type"] == "ml.g4dn.xlarge"


def test_invalid_input_fails_before_anything_is_created(stack, payload, make_input):
    bad = make_input("ml.c5.xlarge", "ml.c5.xlarge", traffic={"min_rps": 50, "max_rps": 5})
    described = stack.run(bad)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidInput"
    cause = described["cause"]
    assert "instance_types: listed more than once: ml.c5.xlarge" in cause
    assert "traffic: min_rps (50.0) is above max_rps (5.0)" in cause
    assert stack.leftovers() == NOTHING
    assert stack.keys("runs/") == []  # not even input.json
    assert stack.scenario.loadgen_runs == []
    entered = [e["stateEnteredEventDetails"]["name"] for e in stack.history(
        described["executionArn"]) if "stateEnteredEventDetails" in e]
    assert "TestEachType" not in entered


def test_input_that_only_runs_locally_is_rejected_with_the_field(stack, payload, make_input):
    described = stack.run(make_input("ml.c5.xlarge", payloads=[
        {"path": "/home/me/cat.jpg", "content_type": "image/jpeg"}]))
    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    assert described["cause"].startswith("payloads[0].path: '/home/me/cat.jpg' is a file on")
    assert stack.leftovers() == NOTHING


def test_missing_payload_is_rejected_before_anything_is_created(stack, payload, make_input):
    described = stack.run(make_input("ml.c5.xlarge", payloads=[
        {"path": "payloads/missing.jpg", "content_type": "image/jpeg"}]))
    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    assert f"payloads[0].path: cannot read s3://{stack.bucket}/payloads/missing.jpg" in (
        described["cause"])
    assert stack.leftovers() == NOTHING


def test_all_types_fail_ends_failed_with_nothing_left(stack, payload, make_input):
    scenario = stack.scenario
    scenario.endpoint_fails["ml.c5.xlarge"] = "Image pull failed"
    scenario.model_error["ml.m5.xlarge"] = (400, "unsupported content type image/jpeg")
    scenario.loadgen_crash["ml.g4dn.xlarge"] = "Locust worker died"
    described = stack.run(make_input(*THREE_TYPES))

    assert described["status"] == "FAILED"
    assert described["error"] == "NoInstanceTypeSucceeded"
    cause = described["cause"]
    assert "ml.c5.xlarge (deploy)" in cause and "Image pull failed" in cause
    assert "ml.m5.xlarge (smoke_test)" in cause and "unsupported content type" in cause
    assert "ml.g4dn.xlarge (load_test)" in cause and "Locust worker died" in cause
    assert "report.html" in cause
    assert stack.leftovers() == NOTHING
    run_keys = stack.keys("runs/")
    assert any(k.endswith("/report.html") for k in run_keys)
    assert sum(k.endswith("/summary.json") for k in run_keys) == 3


def test_poll_loop_waits_for_in_service(stack, payload, make_input):
    stack.scenario.creating_polls["ml.c5.xlarge"] = 3
    out = output_of(stack.run(make_input("ml.c5.xlarge")))
    assert out["tested_types"] == ["ml.c5.xlarge"]
    assert max(stack.scenario.describe_calls.values()) == 3
    assert stack.leftovers() == NOTHING


def test_endpoint_never_in_service_is_bounded_and_deleted(stack, payload, make_input):
    stack.scenario.creating_polls["ml.c5.xlarge"] = 10_000  # the harness's bound is 4 polls
    stack.scenario.capacity_rps["ml.m5.xlarge"] = 30
    out = output_of(stack.run(make_input("ml.c5.xlarge", "ml.m5.xlarge")))
    failed = failed_by_type(out)
    assert failed["ml.c5.xlarge"]["stage"] == "deploy"
    assert "still Creating after 4 checks" in failed["ml.c5.xlarge"]["reason"]
    assert stack.leftovers() == NOTHING


def test_quota_error_on_endpoint_config_deletes_the_model(stack, payload, make_input):
    stack.scenario.faults.append(Fault(
        "create_endpoint_config", "ml.p3.2xlarge", "ResourceLimitExceeded",
        "The account-level service limit 'ml.p3.2xlarge for endpoint usage' is 0 Instances",
    ))
    out = output_of(stack.run(make_input("ml.p3.2xlarge", "ml.c5.xlarge")))
    failed = failed_by_type(out)
    assert failed["ml.p3.2xlarge"]["stage"] == "deploy"
    assert "service limit" in failed["ml.p3.2xlarge"]["reason"]
    assert stack.leftovers() == NOTHING
    assert out["cleanup_problems"] == []  # nothing to delete is not a cleanup problem


def test_load_generator_exit_code_fails_the_item_with_its_reason(stack, payload, make_input):
    stack.scenario.loadgen_crash["ml.c5.xlarge"] = "the endpoint throttled every request"
    out = output_of(stack.run(make_input("ml.c5.xlarge", "ml.m5.xlarge")))
    failed = failed_by_type(out)
    assert failed["ml.c5.xlarge"]["stage"] == "load_test"
    reason = failed["ml.c5.xlarge"]["reason"]
    assert "the endpoint throttled every request" in reason  # the container's own words
    assert "exit code 1" in reason  # and what ECS said
    assert stack.leftovers() == NOTHING


def test_existing_model_is_used_and_never_deleted(stack, payload, make_input):
    stack.sagemaker.create_model(
        ModelName="my-resnet", ExecutionRoleArn="arn:aws:iam::123456789012:role/mine",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/resnet:1"},
    )
    out = output_of(stack.run(make_input("ml.c5.xlarge", model={"kind": "existing",
                                                                "name": "my-resnet"})))
    assert out["tested_types"] == ["ml.c5.xlarge"]
    assert stack.leftovers() == {"models": ["my-resnet"], "endpoint_configs": [],
                                 "endpoints": []}


# --- the interpreter behaves as AWS on what moto gets wrong (harness/error_names, limits) -----


def run_definition(stack: Stack, definition: dict[str, Any],
                   execution_input: Any) -> dict[str, Any]:
    """Execute a small state machine of the test's own on the harness's interpreter."""
    arn = stack.sfn.create_state_machine(
        name="probe", definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/test-role")["stateMachineArn"]
    execution = stack.sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))
    return stack.wait(execution["executionArn"])


def map_over(states: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A Map over ``$.items`` running ``states``, whose Catch takes States.ALL."""
    return {"StartAt": "EachItem", "States": {
        "EachItem": {"Type": "Map", "ItemsPath": "$.items",
                     "ItemProcessor": {"StartAt": next(iter(states)), "States": states},
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                     "End": True, **fields},
        "Caught": {"Type": "Pass", "End": True}}}


def test_states_all_does_not_catch_a_runtime_error_in_an_iteration(stack):
    described = run_definition(stack, map_over({
        "Wait": {"Type": "Wait", "SecondsPath": "$.missing", "End": True}}), {"items": [{}]})
    # On AWS the Map's Catch does not run: the execution fails with the iteration's error.
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Runtime"


def test_a_task_error_keeps_its_name_through_the_map(stack):
    described = run_definition(stack, {"StartAt": "EachItem", "States": {"EachItem": {
        "Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": {
            "StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "Broken",
                                                   "Cause": "the item's own words"}}}}}},
        {"items": [{}]})
    assert (described["status"], described["error"]) == ("FAILED", "Broken")
    assert "the item's own words" in described["cause"]


@pytest.mark.parametrize(("extra_bytes", "status"), [(0, "SUCCEEDED"), (1, "FAILED")])
def test_a_state_output_may_be_256_kib_and_not_a_byte_more(stack, extra_bytes, status):
    overhead = len(json.dumps({"a": "", "b": "z"}, separators=(",", ":")))
    text = "y" * (MAX_STATE_BYTES - overhead + extra_bytes)
    described = run_definition(stack, {"StartAt": "Grow", "States": {"Grow": {
        "Type": "Pass", "Parameters": {"a.$": "$.text", "b": "z"}, "End": True}}},
        {"text": text})
    assert described["status"] == status
    if status == "FAILED":
        assert described["error"] == "States.DataLimitExceeded"


def test_an_iteration_input_past_256_kib_fails_the_execution_despite_the_catch(stack):
    item = "y" * (MAX_STATE_BYTES // 2 + 10)
    described = run_definition(stack, map_over(
        {"Keep": {"Type": "Pass", "End": True}},
        ItemSelector={"a.$": "$$.Map.Item.Value", "b.$": "$$.Map.Item.Value"},
        ResultSelector={"count.$": "States.ArrayLength($)"}), {"items": [item]})
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"


def test_history_is_read_past_the_first_page(stack):
    loop = {"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                  "Next": "Enough"},
        "Enough": {"Type": "Choice", "Default": "Count",
                   "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 300,
                                "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}}
    described = run_definition(stack, loop, {"n": 0})
    arn = described["executionArn"]
    first_page = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)
    assert "nextToken" in first_page  # 300 x (Pass + Choice) x 2 events: more than a page
    history = stack.history(arn)
    assert stack.count_history_events(arn) == len(history) > 1000
    assert (history[0]["type"], history[-1]["type"]) == ("ExecutionStarted", "ExecutionSucceeded")
