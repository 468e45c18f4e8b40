"""What Validate plans for the state machine: the pieces a real first run depends on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rightsizer.aws.validate import InvalidInput


def _env(item: dict[str, Any]) -> dict[str, str]:
    return {e["Name"]: e["Value"] for e in item["loadgen"]["environment"]}


def test_large_model_settings_reach_the_production_variant(validate, make_input, monkeypatch):
    monkeypatch.setenv("RIGHTSIZER_POLL_SECONDS", "60")
    monkeypatch.setenv("RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS", "2700")
    data = make_input("ml.g5.2xlarge", endpoint={
        "volume_size_gb": 200, "model_data_download_timeout_seconds": 1200,
        "container_startup_health_check_timeout_seconds": 900})
    variant = validate(data)["items"][0]["production_variant"]
    assert variant == {
        "VariantName": "AllTraffic", "ModelName": variant["ModelName"],
        "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 1, "InitialVariantWeight": 1,
        "VolumeSizeInGB": 200, "ModelDataDownloadTimeoutInSeconds": 1200,
        "ContainerStartupHealthCheckTimeoutInSeconds": 900,
    }


def test_a_variant_without_the_settings_omits_them(validate, make_input):
    variant = validate(make_input("ml.c5.xlarge"))["items"][0]["production_variant"]
    assert set(variant) == {"VariantName", "ModelName", "InstanceType", "InitialInstanceCount",
                            "InitialVariantWeight"}


@pytest.mark.parametrize(("field", "value"), [
    ("volume_size_gb", 0), ("volume_size_gb", 513),
    ("model_data_download_timeout_seconds", 59),
    ("container_startup_health_check_timeout_seconds", 3601),
])
def test_out_of_range_settings_are_refused_naming_the_field(validate, make_input, field, value):
    with pytest.raises(InvalidInput, match=rf"^endpoint\.{field}: "):
        validate(make_input("ml.c5.xlarge", endpoint={field: value}))


def test_startup_longer_than_the_stack_waits_is_refused(validate, make_input, monkeypatch):
    monkeypatch.setenv("RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS", "1800")
    data = make_input("ml.g5.2xlarge", endpoint={
        "model_data_download_timeout_seconds": 1200,
        "container_startup_health_check_timeout_seconds": 900})
    with pytest.raises(InvalidInput, match=r"2100 s, longer than this stack waits.*1800 s"):
        validate(data)


def test_the_model_request_is_planned_once_not_per_type(validate, make_input):
    plan = validate(make_input("ml.c5.xlarge", "ml.m5.xlarge"))
    assert plan["model"] == {
        "PrimaryContainer": {"ModelPackageName": make_input()["model"]["arn"]},
        "EnableNetworkIsolation": True,
    }
    assert all("model" not in item for item in plan["items"])


def test_preflight_gets_only_where_to_write(validate, make_input):
    plan = validate(make_input("ml.c5.xlarge"))
    env = {e["Name"]: e["Value"] for e in plan["preflight"]["environment"]}
    assert env == {"RIGHTSIZER_MODE": "preflight", "RIGHTSIZER_REGION": "us-east-1",
                   "RIGHTSIZER_RESULTS_URI": "s3://rightsizer-results-test",
                   "RIGHTSIZER_RUN_ID": plan["run"]["run_id"]}
    assert plan["preflight"]["timeout_seconds"] == 600


def test_an_explicit_processes_count_overrides_the_tasks_vcpus(validate, make_input):
    default = validate(make_input("ml.c5.xlarge"))["items"][0]
    assert "RIGHTSIZER_PROCESSES" not in _env(default)  # the task definition's vCPUs apply
    raised = validate(make_input("ml.c5.xlarge", load={"processes": 6}))["items"][0]
    assert _env(raised)["RIGHTSIZER_PROCESSES"] == "6"


def test_input_json_records_the_stacks_region(validate, make_input, s3, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    data = make_input("ml.c5.xlarge", prices={"ml.c5.xlarge": 0.3})
    data["model"] = {"kind": "existing", "name": "my-model"}
    plan = validate(data)
    key = f"runs/{plan['run']['run_id']}/input.json"
    stored = json.loads(s3.get_object(Bucket="rightsizer-results-test", Key=key)["Body"].read())
    assert stored["region"] == "eu-west-1"
