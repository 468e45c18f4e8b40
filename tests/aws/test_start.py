"""Starting a run on a deployed stack (what ``rightsizer start`` does), against moto."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

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
