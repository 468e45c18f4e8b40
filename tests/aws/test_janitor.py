"""The janitor: what an aborted execution leaves is deleted by tag, and nothing else is."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import botocore.session
import pytest

from rightsizer.aws.janitor import ENDPOINT_STATUS_ACTIONS, clean_up
from rightsizer.aws.naming import TAG_EXECUTION_ARN, tag_value


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


# --- the janitor's rules, against moto's SageMaker directly -------------------------------------

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:rightsizer-rightsize:nightly-1"
OTHER_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:rightsizer-rightsize:other"
NOTHING_DELETED = {"endpoint": [], "endpoint_config": [], "model": []}

# What SageMaker allows in each EndpointStatus. Checked against botocore's API model below, so a
# status AWS adds fails these tests until the janitor decides what to do with it.
DELETABLE = {"InService", "OutOfService", "Failed", "UpdateRollbackFailed"}
NOT_DELETABLE_YET = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
BEING_DELETED = {"Deleting"}


def endpoint_statuses() -> list[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for("EndpointStatus").enum)


def backend() -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"]["us-east-1"]


def owned_by(execution_arn: str) -> list[dict[str, str]]:
    return [{"Key": TAG_EXECUTION_ARN, "Value": tag_value(execution_arn)}]


def create_endpoint(sagemaker: Any, name: str, tags: list[dict[str, str]],
                    status: str = "InService") -> None:
    """A model, an endpoint config and an endpoint named ``name``, all with ``tags``."""
    sagemaker.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                           PrimaryContainer={"Image": "i"}, Tags=tags)
    sagemaker.create_endpoint_config(EndpointConfigName=name, Tags=tags, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.c5.xlarge",
         "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    backend().endpoints[name].endpoint_status = status


def names(sagemaker: Any) -> dict[str, list[str]]:
    return {
        "endpoints": sorted(e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]),
        "endpoint_configs": sorted(c["EndpointConfigName"] for c in
                                   sagemaker.list_endpoint_configs()["EndpointConfigs"]),
        "models": sorted(m["ModelName"] for m in sagemaker.list_models()["Models"]),
    }


@pytest.fixture
def clients(moto_aws) -> tuple[Any, Any]:
    return (boto3.client("sagemaker", region_name="us-east-1"),
            boto3.client("stepfunctions", region_name="us-east-1"))


def refuse(monkeypatch, operation: str, code: str, message: str) -> None:
    """Make moto's SageMaker answer ``operation`` with this error, as AWS would."""
    from moto.sagemaker.exceptions import SagemakerClientError
    from moto.sagemaker.models import SageMakerModelBackend

    def raise_error(self, *args, **kwargs):
        raise SagemakerClientError(code, message)

    monkeypatch.setattr(SageMakerModelBackend, operation, raise_error)


def test_the_expected_actions_cover_every_endpoint_status_sagemaker_knows():
    assert set(endpoint_statuses()) == DELETABLE | NOT_DELETABLE_YET | BEING_DELETED
    assert set(ENDPOINT_STATUS_ACTIONS) == set(endpoint_statuses())


@pytest.mark.parametrize("status", endpoint_statuses())
def test_each_endpoint_status_is_deleted_waited_for_or_left_to_finish(clients, status):
    sagemaker, sfn = clients
    create_endpoint(sagemaker, "rightsizer-nightly-1-c5", owned_by(EXECUTION), status)

    report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn, execution_arn=EXECUTION)

    assert report.errors == []
    if status in DELETABLE:
        assert report.deleted["endpoint"] == ["rightsizer-nightly-1-c5"]
        assert report.waiting == report.deleting == []
        assert names(sagemaker)["endpoints"] == []
    elif status in NOT_DELETABLE_YET:
        assert report.deleted["endpoint"] == []
        assert report.waiting == [f"rightsizer-nightly-1-c5 ({status})"]
        assert names(sagemaker)["endpoints"] == ["rightsizer-nightly-1-c5"]
    else:  # Deleting: SageMaker is on it; asking again would only be refused
        assert report.deleting == ["rightsizer-nightly-1-c5"]
        assert report.deleted["endpoint"] == report.waiting == []
        assert names(sagemaker)["endpoints"] == ["rightsizer-nightly-1-c5"]


def test_only_names_starting_with_the_prefix_and_tagged_with_the_execution_are_touched(clients):
    sagemaker, sfn = clients
    odd_execution = EXECUTION + "(retry)"  # tag_value turns '(' and ')' into '_'
    for name, tags in {
        "rightsizer-ours": owned_by(odd_execution),
        "rightsizer2-ours": owned_by(odd_execution),  # another stack's prefix
        "my-rightsizer-ours": owned_by(odd_execution),  # the prefix, but not at the start
        "rightsizer-other-execution": owned_by(OTHER_EXECUTION),
        "rightsizer-untagged": [],
    }.items():
        create_endpoint(sagemaker, name, tags)
    before = names(sagemaker)

    report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn, execution_arn=odd_execution)

    assert report.deleted == {"endpoint": ["rightsizer-ours"],
                              "endpoint_config": ["rightsizer-ours"],
                              "model": ["rightsizer-ours"]}
    after = names(sagemaker)
    assert after == {kind: [n for n in found if n != "rightsizer-ours"]
                     for kind, found in before.items()}


def test_every_page_of_resources_and_of_tags_is_read(clients):
    sagemaker, sfn = clients
    for index in range(5):
        create_endpoint(sagemaker, f"rightsizer-nightly-1-type{index}", owned_by(EXECUTION))
    # 60 tags with ours last: past ListTags' first page of 50. (AWS allows 50 tags a resource,
    # moto more; the point is that the janitor reads on.)
    model = backend()._models["rightsizer-nightly-1-type0"]
    model.tags = [{"Key": f"k{i}", "Value": "v"} for i in range(59)] + model.tags

    report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn, execution_arn=EXECUTION,
                      page_size=2)

    expected = [f"rightsizer-nightly-1-type{index}" for index in range(5)]
    assert {kind: sorted(found) for kind, found in report.deleted.items()} == {
        "endpoint": expected, "endpoint_config": expected, "model": expected}
    assert names(sagemaker) == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_an_endpoint_sagemaker_is_busy_with_waits_for_the_next_sweep(clients, monkeypatch):
    sagemaker, sfn = clients
    create_endpoint(sagemaker, "rightsizer-nightly-1-c5", owned_by(EXECUTION))
    # Listed InService, then an update began before the delete arrived.
    refuse(monkeypatch, "delete_endpoint", "ValidationException",
           'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:123456789012:'
           'endpoint/rightsizer-nightly-1-c5".')

    report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn, execution_arn=EXECUTION)

    assert report.errors == [] and report.deleted["endpoint"] == []
    assert report.waiting == ["rightsizer-nightly-1-c5 (Cannot update in-progress endpoint "
                              '"arn:aws:sagemaker:us-east-1:123456789012:endpoint/'
                              'rightsizer-nightly-1-c5".)']


@pytest.mark.parametrize(("code", "message"), [
    ("ValidationException", 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:'
                            'endpoint/rightsizer-nightly-1-c5".'),
    ("ResourceNotFound", "Resource not found"),
])
def test_an_endpoint_deleted_meanwhile_is_no_error(clients, monkeypatch, code, message):
    sagemaker, sfn = clients
    create_endpoint(sagemaker, "rightsizer-nightly-1-c5", owned_by(EXECUTION))
    refuse(monkeypatch, "delete_endpoint", code, message)

    report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn, execution_arn=EXECUTION)

    assert report.errors == report.waiting == [] and report.deleted["endpoint"] == []
    assert report.deleted["model"] == ["rightsizer-nightly-1-c5"]  # the rest goes on


@pytest.mark.filterwarnings("ignore:Exception\\(SagemakerClientError\\) with code:UserWarning")
@pytest.mark.parametrize(("code", "message"), [
    ("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/janitor is not "
                              "authorized to perform: sagemaker:DeleteEndpoint"),
    ("ValidationException", "Cannot find a rule for this request"),  # on a delete of a model
])
def test_other_refusals_are_errors_and_fail_the_lambda_so_it_retries(clients, monkeypatch, call,
                                                                    code, message):
    sagemaker, _ = clients
    create_endpoint(sagemaker, "rightsizer-nightly-1-c5", owned_by(EXECUTION))
    refuse(monkeypatch, "delete_model", code, message)

    with pytest.raises(Exception, match=f"model rightsizer-nightly-1-c5: {code}: ") as raised:
        call("janitor", {"execution_arn": EXECUTION})
    assert type(raised.value).__name__ == "CleanupIncomplete"
    assert names(sagemaker) == {"endpoints": [], "endpoint_configs": [],
                                "models": ["rightsizer-nightly-1-c5"]}


@pytest.mark.filterwarnings("ignore:Exception\\(SagemakerClientError\\) with code:UserWarning")
def test_unreadable_tags_are_reported_not_skipped_in_silence(clients, monkeypatch):
    sagemaker, sfn = clients
    create_endpoint(sagemaker, "rightsizer-nightly-1-c5", owned_by(EXECUTION))
    refuse(monkeypatch, "list_tags", "AccessDeniedException", "not authorized: sagemaker:ListTags")

    report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn, execution_arn=EXECUTION)

    assert report.deleted == NOTHING_DELETED
    assert report.errors[0] == ("tags of rightsizer-nightly-1-c5: AccessDeniedException: "
                                "not authorized: sagemaker:ListTags")


def test_sweep_keeps_a_running_execution_s_resources_and_deletes_a_forgotten_one_s(clients):
    sagemaker, sfn = clients
    machine = sfn.create_state_machine(
        name="rightsizer-rightsize", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "Hold", "States": {
            "Hold": {"Type": "Wait", "Seconds": 600, "End": True}}}))["stateMachineArn"]
    running = sfn.start_execution(stateMachineArn=machine, name="running")["executionArn"]
    try:
        create_endpoint(sagemaker, "rightsizer-running-c5", owned_by(running))
        create_endpoint(sagemaker, "rightsizer-forgotten-c5", owned_by(OTHER_EXECUTION))

        report = clean_up("rightsizer", sagemaker=sagemaker, sfn=sfn)

        assert report.kept_running == ["rightsizer-running-c5"] * 3
        assert report.deleted == {kind: ["rightsizer-forgotten-c5"] for kind in NOTHING_DELETED}
        assert report.errors == []
    finally:
        sfn.stop_execution(executionArn=running)
