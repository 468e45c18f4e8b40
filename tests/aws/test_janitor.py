"""The janitor: what an aborted execution leaves is deleted by tag, and nothing else is."""

from __future__ import annotations

import threading
import time

import pytest

from rightsizer.aws.naming import TAG_EXECUTION_ARN


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def own_model(stack):
    """A user's model under the prefix but without our tag: must never be deleted."""
    stack.sagemaker.create_model(
        ModelName="rightsizer-my-own", ExecutionRoleArn="arn:aws:iam::123456789012:role/mine",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
    )
    return "rightsizer-my-own"


# moto's interpreter, stopped mid-Map, ends the execution FAILED with an internal error and a
# stray exception in a helper thread (moto 5.2.5); on AWS the status is ABORTED. Either way no
# Catch runs, which is what this test needs.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_aborted_execution_is_cleaned_up_by_the_janitor(stack, payload, make_input, call,
                                                        own_model):
    hold = threading.Event()
    stack.scenario.hold_load = hold
    arn = stack.start(make_input("ml.c5.xlarge"), name="to-abort")
    wait_for(lambda: stack.scenario.loadgen_runs)  # the load test is "running"
    left = stack.leftovers()
    assert len(left["endpoints"]) == 1

    # While it runs, a sweep keeps its resources.
    report = call("janitor", {"sweep": True})
    assert report["deleted"] == {"endpoint": [], "endpoint_config": [], "model": []}
    assert left["endpoints"][0] in report["kept_running"]

    stack.sfn.stop_execution(executionArn=arn)
    hold.set()
    assert stack.wait(arn)["status"] in {"ABORTED", "FAILED"}
    # No Catch ran: the endpoint, its config and the model are still there.
    assert stack.leftovers()["endpoints"] == left["endpoints"]

    event = {"version": "0", "source": "aws.states",
             "detail-type": "Step Functions Execution Status Change",
             "detail": {"executionArn": arn, "stateMachineArn": stack.state_machine_arn,
                        "status": "ABORTED"}}
    report = call("janitor", event)
    assert report["deleted"]["endpoint"] == left["endpoints"]
    assert report["deleted"]["endpoint_config"] == left["endpoint_configs"]
    assert report["deleted"]["model"] == [m for m in left["models"] if m != own_model]
    assert stack.leftovers() == {"models": [own_model], "endpoint_configs": [], "endpoints": []}
    # Safe to run twice.
    again = call("janitor", event)
    assert again["deleted"] == {"endpoint": [], "endpoint_config": [], "model": []}
    assert again["errors"] == []


def test_sweep_deletes_what_finished_executions_left_and_waits_for_creating(stack, call,
                                                                           own_model):
    sagemaker = stack.sagemaker
    gone = "arn:aws:states:us-east-1:123456789012:execution:rightsizer-rightsize:long-gone"
    tags = [{"Key": TAG_EXECUTION_ARN, "Value": gone}]
    sagemaker.create_model(ModelName="rightsizer-long-gone-c5", ExecutionRoleArn="arn:aws:iam::"
                           "123456789012:role/r", PrimaryContainer={"Image": "i"}, Tags=tags)
    for name in ("rightsizer-long-gone-c5", "rightsizer-long-gone-m5"):
        sagemaker.create_endpoint_config(EndpointConfigName=name, Tags=tags, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "rightsizer-long-gone-c5",
             "InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    # One endpoint is still Creating: SageMaker would refuse to delete it; the next sweep will.
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends["123456789012"]["us-east-1"].endpoints[
        "rightsizer-long-gone-m5"].endpoint_status = "Creating"

    report = call("janitor", {"sweep": True})
    assert report["deleted"]["endpoint"] == ["rightsizer-long-gone-c5"]
    assert report["waiting"] == ["rightsizer-long-gone-m5 (Creating)"]
    assert stack.leftovers()["endpoints"] == ["rightsizer-long-gone-m5"]
    assert own_model in stack.leftovers()["models"]


def test_janitor_needs_an_execution_or_a_sweep(call, stack):
    with pytest.raises(ValueError, match="no execution ARN in the event"):
        call("janitor", {"detail": {}})


def test_odd_execution_names_are_refused_before_anything_exists(stack, payload, make_input):
    described = stack.run(make_input("ml.c5.xlarge"), name="nightly(1)")
    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    assert "(execution name): 'nightly(1)'" in described["cause"]
    assert stack.leftovers() == {"models": [], "endpoint_configs": [], "endpoints": []}
