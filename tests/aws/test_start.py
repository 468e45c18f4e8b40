"""Starting a run on a deployed stack (what ``rightsizer start`` does), against moto."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from rightsizer.aws.start import StartError, download_report, find_stack, follow, start_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployed(stack):
    """A CloudFormation stack in moto whose outputs point at the harness's state machine."""
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "StateMachineArn": {"Value": stack.state_machine_arn},
            "ResultsBucketName": {"Value": stack.bucket},
        },
    }
    cfn.create_stack(StackName="rightsizer", TemplateBody=json.dumps(template))
    return find_stack("rightsizer", cfn)


def test_start_uploads_the_payload_runs_and_downloads_the_report(deployed, stack, tmp_path):
    folder = tmp_path / "aws"
    shutil.copytree(ROOT / "examples" / "aws", folder)
    data = json.loads((folder / "resnet50-input.json").read_text())
    # The example's model package is in us-east-1, as is the harness; keep its types few.
    data["instance_types"] = ["ml.c5.xlarge", "ml.c5.2xlarge"]
    (folder / "input.json").write_text(json.dumps(data))
    stack.scenario.capacity_rps.update({"ml.c5.xlarge": 40, "ml.c5.2xlarge": 90})

    arn = start_run(folder / "input.json", deployed, sfn=stack.sfn, s3=stack.s3,
                    now=datetime(2026, 11, 25, 19, 44, tzinfo=UTC))
    assert arn.endswith(":resnet50-cpu-20261125T194400Z")
    uploaded = stack.s3.get_object(Bucket=stack.bucket, Key="payloads/leaves.jpg")
    assert uploaded["ContentType"] == "application/x-image"

    lines: list[str] = []
    described = follow(arn, sfn=stack.sfn, progress=lines.append, poll_seconds=0.05,
                       timeout_seconds=60, sleep=__import__("time").sleep)
    assert described["status"] == "SUCCEEDED", described
    assert any(line.endswith(" Validate") for line in lines)
    assert any(line.endswith(" Recommend") for line in lines)
    report = download_report(json.loads(described["output"]), stack.s3, tmp_path / "r.html")
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_a_bad_input_does_not_start_anything(deployed, stack, tmp_path):
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"name": "x", "model": {"kind": "existing", "name": "m"},
                                "instance_types": ["ml.c5.xlarge"], "payloads": [],
                                "traffic": {"min_rps": 1, "max_rps": 2}}))
    with pytest.raises(StartError, match="payloads: List should have at least 1 item"):
        start_run(path, deployed, sfn=stack.sfn, s3=stack.s3)
    assert stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"] == []


def test_a_missing_payload_file_is_named(deployed, stack, tmp_path, make_input):
    path = tmp_path / "input.json"
    path.write_text(json.dumps(make_input("ml.c5.xlarge", payloads=[
        {"path": "payloads/nope.jpg", "content_type": "image/jpeg"}])))
    with pytest.raises(StartError, match=r"payloads\[0\]\.path: .*nope.jpg does not exist"):
        start_run(path, deployed, sfn=stack.sfn, s3=stack.s3)


def test_a_stack_without_the_outputs_is_refused(moto_aws):
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName="other", TemplateBody=json.dumps(
        {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}))
    with pytest.raises(StartError, match="is it a rightsizer stack"):
        find_stack("other", cfn)
    with pytest.raises(StartError, match="not found"):
        find_stack("missing", cfn)


def test_module_command_starts_waits_and_saves_the_report(deployed, stack, payload, tmp_path,
                                                          monkeypatch, capsys, make_input):
    from rightsizer.aws.start import main

    path = tmp_path / "input.json"
    path.write_text(json.dumps(make_input("ml.c5.xlarge")))
    monkeypatch.chdir(tmp_path)
    code = main([str(path), "--stack", "rightsizer", "--region", "us-east-1", "--wait",
                 "--name", "cli-run", "--poll-seconds", "0.05"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "recommended: ml.c5.xlarge" in out
    report = next((tmp_path / "results" / "runs").glob("*/report.html"))
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_module_command_reports_a_failed_run(deployed, stack, payload, tmp_path, capsys,
                                             make_input):
    from rightsizer.aws.start import main

    stack.scenario.endpoint_fails["ml.c5.xlarge"] = "no capacity"
    path = tmp_path / "input.json"
    path.write_text(json.dumps(make_input("ml.c5.xlarge")))
    code = main([str(path), "--stack", "rightsizer", "--region", "us-east-1", "--wait",
                 "--poll-seconds", "0.05"])
    assert code == 1
    assert "NoInstanceTypeSucceeded" in capsys.readouterr().err


# --- what AWS answers that the harness does not: paging, refusals, missing region ---------------

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:rightsizer-rightsize:long-run"


def history_event(event_id: int) -> dict:
    return {"id": event_id, "type": "TaskStateEntered", "previousEventId": event_id - 1,
            "timestamp": datetime(2026, 11, 25, 19, 44, tzinfo=UTC),
            "stateEnteredEventDetails": {"name": f"State{event_id}"}}


def newest_first(first: int, last: int) -> list[dict]:
    return [history_event(event_id) for event_id in range(last, first - 1, -1)]


def test_follow_reads_a_history_longer_than_one_page_and_then_only_what_is_new():
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    query = {"executionArn": EXECUTION_ARN, "reverseOrder": True,
             "includeExecutionData": False, "maxResults": 1000}
    with Stubber(sfn) as stub:
        # First poll: 1,500 events, newest first, in two pages of at most 1,000.
        stub.add_response("get_execution_history",
                          {"events": newest_first(501, 1500), "nextToken": "page-2"}, query)
        stub.add_response("get_execution_history", {"events": newest_first(1, 500)},
                          {**query, "nextToken": "page-2"})
        stub.add_response("describe_execution", running_description(), {
            "executionArn": EXECUTION_ARN})
        # Second poll: the newest page already reaches what was seen, so no second page.
        stub.add_response("get_execution_history",
                          {"events": newest_first(503, 1502), "nextToken": "page-2"}, query)
        stub.add_response("describe_execution", {**running_description(), "status": "SUCCEEDED",
                                                 "stopDate": datetime(2026, 11, 25, tzinfo=UTC)},
                          {"executionArn": EXECUTION_ARN})
        lines: list[str] = []
        described = follow(EXECUTION_ARN, sfn=sfn, progress=lines.append, poll_seconds=0,
                           sleep=lambda _s: None)
        stub.assert_no_pending_responses()
    assert described["status"] == "SUCCEEDED"
    assert lines == [f"19:44:00 State{event_id}" for event_id in range(1, 1503)]


def running_description() -> dict:
    return {"executionArn": EXECUTION_ARN, "status": "RUNNING",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:rightsizer-"
                               "rightsize",
            "startDate": datetime(2026, 11, 25, 19, 44, tzinfo=UTC)}


@pytest.mark.parametrize("status",
                         ["ROLLBACK_COMPLETE", "CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS"])
def test_a_stack_that_never_finished_deploying_is_named_with_its_status(status):
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": "rightsizer", "StackStatus": status,
            "CreationTime": datetime(2026, 11, 25, tzinfo=UTC)}]}, {"StackName": "rightsizer"})
        with pytest.raises(StartError, match=f"'rightsizer' is {status}: it never finished "
                                             "deploying; .* deploy again"):
            find_stack("rightsizer", cfn)


def test_a_stack_that_cannot_be_read_is_not_called_missing():
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stacks", "AccessDenied", "User is not authorized to "
                              "perform: cloudformation:DescribeStacks", 403)
        with pytest.raises(StartError, match="cannot describe stack 'rightsizer' in us-east-1: "
                                             "AccessDenied: User is not authorized"):
            find_stack("rightsizer", cfn)


def test_a_missing_stack_names_the_region_it_was_looked_for_in(moto_aws):
    cfn = boto3.client("cloudformation", region_name="eu-west-1")
    with pytest.raises(StartError, match="'missing' not found in eu-west-1: deploy it "
                                         r"\(sam deploy\) or pass the --region it is in"):
        find_stack("missing", cfn)


@pytest.fixture
def small_stack(moto_aws):
    """A bucket and a one-state machine in moto: enough to start executions."""
    from rightsizer.aws.start import Stack

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="rightsizer-results-small")
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="rightsizer-rightsize", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    return Stack("rightsizer", machine, "rightsizer-results-small"), sfn, s3


def inline_input(tmp_path: Path, body: str = "{}", name: str = "digits") -> Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps({
        "name": name, "model": {"kind": "existing", "name": "my-model"},
        "instance_types": ["ml.c5.xlarge"], "traffic": {"min_rps": 1, "max_rps": 2},
        "payloads": [{"body": body, "content_type": "application/json"}]}))
    return path


def test_a_reused_execution_name_says_to_pass_another(small_stack, tmp_path):
    stack, sfn, s3 = small_stack
    start_run(inline_input(tmp_path), stack, sfn=sfn, s3=s3, execution_name="nightly")
    with pytest.raises(StartError, match=r"an execution named 'nightly' already exists on .*"
                                         r"pass another --name"):
        start_run(inline_input(tmp_path, body='{"x": 1}'), stack, sfn=sfn, s3=s3,
                  execution_name="nightly")


def test_a_state_machine_that_is_gone_says_to_deploy_again(small_stack, tmp_path):
    stack, sfn, s3 = small_stack
    sfn.delete_state_machine(stateMachineArn=stack.state_machine_arn)
    with pytest.raises(StartError, match="state machine .* of stack 'rightsizer' is gone or "
                                         r"being deleted \(StateMachineDoesNotExist\): deploy"):
        start_run(inline_input(tmp_path), stack, sfn=sfn, s3=s3)


def test_an_execution_name_validate_would_refuse_is_refused_before_anything_starts(
        small_stack, tmp_path):
    stack, sfn, s3 = small_stack
    with pytest.raises(StartError, match=r"execution name 'nightly\(1\)': use 1-80 letters"):
        start_run(inline_input(tmp_path), stack, sfn=sfn, s3=s3, execution_name="nightly(1)")
    assert sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"] == []


def test_an_input_over_step_functions_256_kib_is_refused_before_anything_starts(small_stack,
                                                                                 tmp_path):
    stack, sfn, s3 = small_stack
    big = json.dumps({"pixels": "0" * 300_000})
    with pytest.raises(StartError, match="is 293 KiB; Step Functions takes at most 256 KiB"):
        start_run(inline_input(tmp_path, body=big), stack, sfn=sfn, s3=s3)
    assert sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"] == []


def test_a_payload_that_cannot_be_uploaded_names_the_bucket(small_stack, tmp_path, make_input):
    from rightsizer.aws.start import Stack

    stack, sfn, s3 = small_stack
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "x.json").write_text("{}")
    path = tmp_path / "input.json"
    path.write_text(json.dumps(make_input("ml.c5.xlarge", payloads=[
        {"path": "payloads/x.json", "content_type": "application/json"}])))
    gone = Stack("rightsizer", stack.state_machine_arn, "rightsizer-results-deleted")
    with pytest.raises(StartError, match=r"payloads\[0\]\.path: cannot upload .*x.json to "
                                         "s3://rightsizer-results-deleted/payloads/x.json"):
        start_run(path, gone, sfn=sfn, s3=s3)
    assert sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"] == []


def test_a_report_that_is_not_there_is_a_start_error(small_stack, tmp_path):
    _, _, s3 = small_stack
    with pytest.raises(StartError, match=r"cannot download s3://rightsizer-results-small/runs/r/"
                                         r"report\.html: 404"):
        download_report({"report_uri": "s3://rightsizer-results-small/runs/r/report.html"}, s3,
                        tmp_path / "report.html")


def test_module_command_without_a_region_says_how_to_give_one(tmp_path, monkeypatch, capsys):
    from rightsizer.aws.start import main

    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    code = main([str(inline_input(tmp_path)), "--stack", "rightsizer"])
    assert code == 2
    assert "no AWS region: pass --region or set AWS_REGION" in capsys.readouterr().err
