"""The fault matrix: a failure injected at every step of the real state machine (moto executes
``statemachine/rightsize.asl.json``; conftest.py says what is real and what is simulated).

Every case checks the same three things: no SageMaker model, endpoint config or endpoint of the
run is left; the healthy instance type's results are intact; the execution's output or error
names the failing type, the stage and the service's own words. docs/faults.md has the table.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import ASL_PATH, CapacityFailure, Fault, Scenario, Stack

FAULTY = "ml.c5.xlarge"
HEALTHY = "ml.m5.xlarge"
NOTHING = {"models": [], "endpoint_configs": [], "endpoints": []}
ITERATION = json.loads(ASL_PATH.read_text())["States"]["TestEachType"]["ItemProcessor"]["States"]


def retry_caps(state: str, error: str) -> list[float]:
    """The waits the ASL's Retry on ``state`` allows for ``error``, in order: the retrier's
    interval times its backoff per attempt (FULL jitter draws each wait between 0 and that)."""
    [retrier] = [r for r in ITERATION[state]["Retry"] if error in r["ErrorEquals"]]
    caps = [retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** n
            for n in range(retrier.get("MaxAttempts", 3))]
    return [min(cap, retrier.get("MaxDelaySeconds", cap)) for cap in caps]


# The name of every error SageMaker's API model does not declare (throttling, validation, 5xx).
SAGEMAKER_BASE = "SageMaker.SageMakerException"


@dataclass
class Case:
    """One fault: how to inject it, the stage it must be reported at, words the reason holds."""

    inject: Callable[[Scenario], None]
    stage: str
    words: list[str]
    retry_caps: list[float] = field(default_factory=list)  # the Retry waits it must cause


def fault(operation: str, code: str, message: str, status: int = 400):
    return lambda s: s.faults.append(Fault(operation, FAULTY, code, message, status=status))


def setting(attribute: str, value: Any):
    def inject(s: Scenario) -> None:
        target = getattr(s, attribute)
        if isinstance(target, set):
            target.add(FAULTY)
        else:
            target[FAULTY] = value

    return inject


QUOTA = "The account-level service limit 'ml.c5.xlarge for endpoint usage' is 0 Instances"
CASES: dict[str, Case] = {
    "CreateModel validation error": Case(
        fault("create_model", "ValidationException",
              "Could not find model data at s3://bucket/model.tar.gz"),
        "deploy", [SAGEMAKER_BASE, "Could not find model data", "Status Code: 400"],
        retry_caps("CreateModel", SAGEMAKER_BASE)),
    "CreateModel throttled": Case(
        fault("create_model", "ThrottlingException", "Rate exceeded"),
        "deploy", [SAGEMAKER_BASE, "Rate exceeded"], retry_caps("CreateModel", SAGEMAKER_BASE)),
    "CreateEndpointConfig quota exceeded": Case(  # modelled: its own name, not retried
        fault("create_endpoint_config", "ResourceLimitExceeded", QUOTA),
        "deploy", ["SageMaker.ResourceLimitExceededException", "service limit"]),
    "CreateEndpointConfig throttled": Case(
        fault("create_endpoint_config", "ThrottlingException", "Rate exceeded"),
        "deploy", [SAGEMAKER_BASE], retry_caps("CreateEndpointConfig", SAGEMAKER_BASE)),
    "CreateEndpoint quota exceeded": Case(
        fault("create_endpoint", "ResourceLimitExceeded", QUOTA),
        "deploy", ["SageMaker.ResourceLimitExceededException", "service limit"]),
    "CreateEndpoint validation error": Case(
        fault("create_endpoint", "ValidationException",
              "Instance type ml.c5.xlarge is not supported by this model package"),
        "deploy", [SAGEMAKER_BASE, "not supported by this model package"],
        retry_caps("CreateEndpoint", SAGEMAKER_BASE)),
    "CreateEndpoint throttled": Case(
        fault("create_endpoint", "ThrottlingException", "Rate exceeded"),
        "deploy", [SAGEMAKER_BASE], retry_caps("CreateEndpoint", SAGEMAKER_BASE)),
    "DescribeEndpoint keeps failing": Case(
        fault("describe_endpoint", "InternalFailure", "We encountered an internal error", 500),
        "deploy", [SAGEMAKER_BASE, "Status Code: 500"],
        retry_caps("DescribeEndpoint", SAGEMAKER_BASE)),
    "endpoint goes to Failed": Case(
        setting("endpoint_fails", "The primary container did not pass the ping health check"),
        "deploy", ["went to Failed", "ping health check"]),
    "endpoint never InService": Case(
        setting("creating_polls", 10_000), "deploy", ["still Creating after 4 checks"]),
    "smoke test 4xx": Case(
        setting("model_error", (400, "unsupported content type image/jpeg")),
        "smoke_test", ["answered 400", "unsupported content type", "container logs"]),
    "smoke test 5xx": Case(
        setting("model_error", (503, "worker died: out of memory")),
        "smoke_test", ["answered 503", "out of memory"]),
    "smoke test timeout": Case(
        setting("smoke_timeout", None), "smoke_test", ["no answer within 70 s"]),
    "smoke test wrong content type": Case(
        setting("smoke_answer", ("<html>Internal error</html>", "text/html")),
        "smoke_test", ["Content-Type 'text/html'", "asks for 'application/json'"]),
    "smoke test empty answer": Case(
        setting("smoke_answer", ("", "application/json")), "smoke_test", ["empty body"]),
    "Fargate task refused": Case(
        setting("run_task_error", ("ClientException", "Task definition is inactive")),
        "load_test", ["ECS.AmazonECSException", "Task definition is inactive",
                      "Error Code: ClientException"],
        retry_caps("LoadTest", "ECS.AmazonECSException")),
    "no Fargate capacity": Case(
        lambda s: s.run_task_failures.update({FAULTY: CapacityFailure()}),
        "load_test", ["AmazonECS.Unknown", "Capacity is unavailable at this time"],
        retry_caps("LoadTest", "AmazonECS.Unknown")),
    "load generator exits non-zero": Case(
        setting("loadgen_crash", "every request was throttled"),
        "load_test", ["every request was throttled", "exit code 1"]),
    "load generator cannot write results": Case(
        setting("loadgen_s3_denied", None), "load_test", ["exit code 1", "task's logs"]),
}


def run_two_types(stack: Stack, make_input: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    stack.scenario.capacity_rps[HEALTHY] = 30
    described = stack.run(make_input(FAULTY, HEALTHY))
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def assert_healthy_type_intact(stack: Stack, out: dict[str, Any]) -> None:
    assert HEALTHY in out["tested_types"]
    summary = stack.read_json(f"runs/{out['run_id']}/{HEALTHY}/summary.json")
    assert summary["status"] == "succeeded" and summary["max_sustainable_rps"] == 30
    assert f"runs/{out['run_id']}/{HEALTHY}/step_001_stats.csv" in stack.keys("runs/")


@pytest.mark.parametrize("name", list(CASES))
def test_fault_leaves_nothing_and_says_what_failed(name, stack, payload, make_input, caplog):
    case = CASES[name]
    case.inject(stack.scenario)
    with caplog.at_level(logging.ERROR, logger="rightsizer.loadgen_task"):
        out = run_two_types(stack, make_input)

    assert stack.leftovers() == NOTHING
    assert out["cleanup_problems"] == []
    assert_healthy_type_intact(stack, out)
    assert out["tested_types"] == [HEALTHY] and out["recommended"]["instance_type"] == HEALTHY
    failed = {f["instance_type"]: f for f in out["failed_types"]}
    assert set(failed) == {FAULTY}
    assert failed[FAULTY]["stage"] == case.stage
    for words in case.words:
        assert words in failed[FAULTY]["reason"], failed[FAULTY]["reason"]
    # The type's summary.json and the report tell the same story.
    summary = stack.read_json(f"runs/{out['run_id']}/{FAULTY}/summary.json")
    assert (summary["status"], summary["failed_stage"]) == ("failed", case.stage)
    # Retries happened exactly as the ASL's Retry for the error's AWS name says, within its caps.
    waits = stack.scenario.retry_waits
    assert len(waits) == len(case.retry_caps), waits
    assert all(0 <= w <= cap for w, cap in zip(waits, case.retry_caps, strict=True))
    if name == "load generator cannot write results":
        # The measurement survives in the task's log.
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("summary:")]
        assert logged and '"max_sustainable_rps":10.0' in logged[0]


def test_transient_throttling_is_retried_and_the_type_is_measured(stack, payload, make_input):
    """Throttling arrives as SageMaker.SageMakerException, which every SageMaker task retries
    (the deletion loop's calls by going round the loop)."""
    for operation in ("create_model", "create_endpoint_config", "create_endpoint",
                      "describe_endpoint", "delete_endpoint"):
        stack.scenario.faults.append(
            Fault(operation, FAULTY, "ThrottlingException", "Rate exceeded", times=2))
    out = run_two_types(stack, make_input)
    assert sorted(out["tested_types"]) == sorted([FAULTY, HEALTHY])
    assert out["failed_types"] == [] and out["cleanup_problems"] == []
    # Four calls retried twice each; DeleteEndpoint's throttling goes round the deletion loop
    # (check, Wait, delete again), which is its retry.
    assert len(stack.scenario.retry_waits) == 4 * 2
    assert stack.leftovers() == NOTHING


def test_fargate_capacity_that_returns_is_retried_and_the_type_is_measured(
        stack, payload, make_input):
    stack.scenario.run_task_failures[FAULTY] = CapacityFailure(attempts=2)
    out = run_two_types(stack, make_input)
    assert sorted(out["tested_types"]) == sorted([FAULTY, HEALTHY])
    caps = retry_caps("LoadTest", "AmazonECS.Unknown")[:2]
    waits = stack.scenario.retry_waits
    assert len(waits) == 2 and all(0 <= w <= cap for w, cap in zip(waits, caps, strict=True))
    assert stack.leftovers() == NOTHING


def test_delete_that_keeps_failing_is_reported_and_the_janitor_finishes_it(
        stack, payload, make_input, call):
    stack.scenario.faults.append(
        Fault("delete_endpoint", FAULTY, "InternalFailure", "We encountered an internal error",
              status=500))
    out = run_two_types(stack, make_input)
    assert_healthy_type_intact(stack, out)
    # The measurement is kept; the endpoint that could not be deleted is named in the output.
    assert sorted(out["tested_types"]) == sorted([FAULTY, HEALTHY])
    [problem] = out["cleanup_problems"]
    assert problem.startswith(f"{FAULTY}: deleting the endpoint failed")
    assert SAGEMAKER_BASE in problem and "We encountered an internal error" in problem
    left = stack.leftovers()
    assert len(left["endpoints"]) == 1 and left["endpoint_configs"] == left["models"] == []

    # SageMaker recovers; the execution's status-change event runs the janitor.
    stack.scenario.faults.clear()
    report = call("janitor", status_change(stack, out_arn(stack), "SUCCEEDED"))
    assert report["deleted"]["endpoint"] == left["endpoints"]
    assert stack.leftovers() == NOTHING


def test_iteration_failing_outside_its_catch_fails_the_execution_and_the_janitor_cleans_up(
        stack, payload, make_input, call):
    """A defect (here: a plan without poll settings) fails an iteration in a Wait state with
    States.Runtime. On AWS no Catch takes it, not even the Map's States.ALL: the execution fails
    at once and the janitor, run on its status-change event, deletes what the iteration made."""

    def break_plan(result: dict[str, Any]) -> dict[str, Any]:
        for item in result["items"]:
            if item["instance_type"] == FAULTY:
                del item["poll"]
        return result

    stack.scenario.after_validate = break_plan
    stack.scenario.capacity_rps[HEALTHY] = 30
    described = stack.run(make_input(HEALTHY, FAULTY, concurrency=1))

    assert described["status"] == "FAILED"
    assert described["error"] == "States.Runtime"
    left = stack.leftovers()  # the faulty type's cleanup never ran
    assert left["endpoints"] and all("-c5-xlarge-" in e for e in left["endpoints"])

    report = call("janitor", status_change(stack, described["executionArn"], "FAILED"))
    assert report["deleted"]["endpoint"] == left["endpoints"]
    assert stack.leftovers() == NOTHING
    healthy = stack.read_json(f"{run_prefix_of(stack)}/{HEALTHY}/summary.json")
    assert healthy["status"] == "succeeded"


def test_a_state_past_256_kib_fails_the_execution_and_the_janitor_cleans_up(
        stack, payload, make_input, call):
    """DescribeEndpoint's answer is too large for a state: States.DataLimitExceeded, which no
    Catch takes on AWS (moto's interpreter would catch it and carry on)."""
    stack.scenario.describe_padding[FAULTY] = 270_000
    described = stack.run(make_input(FAULTY))

    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"
    assert stack.leftovers()["endpoints"]
    call("janitor", status_change(stack, described["executionArn"], "FAILED"))
    assert stack.leftovers() == NOTHING


def test_recommendation_failure_keeps_results_and_says_how_to_rebuild(stack, payload,
                                                                     make_input):
    stack.scenario.s3_denied.append("/recommendation.json")
    stack.scenario.capacity_rps.update({FAULTY: 20, HEALTHY: 30})
    described = stack.run(make_input(FAULTY, HEALTHY))

    assert described["status"] == "FAILED"
    assert described["error"] == "RecommendationFailed"
    cause = described["cause"]
    assert "Building the recommendation failed" in cause and "AccessDenied" in cause
    assert stack.leftovers() == NOTHING
    run_prefix = run_prefix_of(stack)
    run_uri = f"s3://{stack.bucket}/{run_prefix}/"
    assert f"rightsizer report {run_uri}" in cause
    for kind in (FAULTY, HEALTHY):
        assert stack.read_json(f"{run_prefix}/{kind}/summary.json")["status"] == "succeeded"

    # Once the bucket accepts writes again, the report is rebuilt from what was kept.
    from rightsizer.pipeline import rebuild_report

    stack.scenario.s3_denied.clear()
    outcome = rebuild_report(run_uri)
    assert outcome.recommendation.recommended.instance_type == HEALTHY  # cheaper per request
    assert f"{run_prefix}/report.html" in stack.keys("runs/")


def test_results_bucket_not_writable_fails_before_anything_exists(stack, payload, make_input):
    stack.scenario.s3_denied.append("/input.json")
    described = stack.run(make_input(FAULTY, HEALTHY))
    assert described["status"] == "FAILED"
    assert described["error"] == "ResultsNotWritable"
    assert "AccessDenied" in described["cause"] and "nothing was created" in described["cause"]
    assert stack.leftovers() == NOTHING
    assert stack.scenario.loadgen_runs == []


def test_load_test_past_its_bound_is_stopped_and_cleaned_up(stack, payload, make_input):
    def short_bound(result: dict[str, Any]) -> dict[str, Any]:
        for item in result["items"]:
            if item["instance_type"] == FAULTY:
                item["loadgen"]["timeout_seconds"] = 1
        return result

    scenario = stack.scenario
    scenario.after_validate = short_bound
    hold_faulty_type(scenario)
    try:
        out = run_two_types(stack, make_input)
    finally:
        scenario.hold_load.set()
    failed = {f["instance_type"]: f for f in out["failed_types"]}
    assert failed[FAULTY]["stage"] == "load_test"
    assert "States.Timeout" in failed[FAULTY]["reason"]
    assert_healthy_type_intact(stack, out)
    assert stack.leftovers() == NOTHING


@pytest.mark.parametrize("asl_overrides", [{"TimeoutSeconds": 5}])
def test_execution_timed_out_mid_map_is_cleaned_up_by_the_janitor(stack, payload, make_input,
                                                                  call):
    scenario = stack.scenario
    hold_faulty_type(scenario)
    scenario.capacity_rps[HEALTHY] = 30
    try:
        arn = stack.start(make_input(FAULTY, HEALTHY), name="to-time-out")
        described = stack.wait(arn, timeout=30)
        assert described["status"] == "TIMED_OUT"
        left = stack.leftovers()  # no Catch ran: the held type's resources are still there
        assert len(left["endpoints"]) == 1 and "-c5-xlarge-" in left["endpoints"][0]

        report = call("janitor", status_change(stack, arn, "TIMED_OUT"))
        assert report["deleted"]["endpoint"] == left["endpoints"]
        assert stack.leftovers() == NOTHING
        again = call("janitor", status_change(stack, arn, "TIMED_OUT"))  # safe to run twice
        assert again["deleted"] == {"endpoint": [], "endpoint_config": [], "model": []}
        assert again["errors"] == []
        # The type that finished before the timeout kept its results.
        run_prefix = run_prefix_of(stack)
        assert stack.read_json(f"{run_prefix}/{HEALTHY}/summary.json")["status"] == "succeeded"
    finally:
        scenario.hold_load.set()
        time.sleep(0.1)


def test_execution_bound_is_the_one_validate_checks():
    from rightsizer.cost import AWS_EXECUTION_TIMEOUT_SECONDS

    assert json.loads(ASL_PATH.read_text())["TimeoutSeconds"] == AWS_EXECUTION_TIMEOUT_SECONDS


def test_input_that_cannot_finish_within_the_bound_is_refused(stack, payload, make_input):
    types = [f"ml.{family}.{size}" for family in ("c5", "m5", "r5", "c6i", "m6i")
             for size in ("large", "xlarge", "2xlarge", "4xlarge")]
    described = stack.run(make_input(*types, concurrency=1, load={"max_seconds": 10_000},
                                     prices=dict.fromkeys(types, 1.0)))
    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    assert described["cause"].startswith("instance_types: 20 types 1 at a time can take up to")
    assert "raise concurrency" in described["cause"]
    assert stack.leftovers() == NOTHING


def hold_faulty_type(scenario: Scenario) -> None:
    """The faulty type's load test "runs" until released, then ends without a result."""
    scenario.hold_load = threading.Event()
    scenario.hold_only, scenario.abandon_held = {FAULTY}, True


def run_prefix_of(stack: Stack) -> str:
    """``runs/<run_id>``: the one run in the bucket."""
    [key] = [k for k in stack.keys("runs/") if k.endswith("/input.json")]
    return key.rsplit("/", 1)[0]


def out_arn(stack: Stack) -> str:
    return stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"][0][
        "executionArn"]


def status_change(stack: Stack, execution_arn: str, status: str) -> dict[str, Any]:
    """The EventBridge event the template's rule sends to the janitor."""
    return {"version": "0", "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {"executionArn": execution_arn,
                       "stateMachineArn": stack.state_machine_arn, "status": status}}


@pytest.mark.parametrize(("where", "words"), [
    ("s3://rightsizer-results-test/payloads/",
     "is not a run: expected s3://bucket/runs/<run id>/"),
    ("s3://rightsizer-results-test/runs/nothing-here/",
     "is not a run folder: it has no input.json"),
])
def test_report_on_something_that_is_not_a_run_names_the_argument(s3, where, words, capsys):
    from rightsizer import cli

    assert cli.main(["report", where]) == 2
    assert f"run_dir: {where} {words}" in capsys.readouterr().err
