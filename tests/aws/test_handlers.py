"""The Lambda handlers, called as Lambda calls them, against moto's S3 and SageMaker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from harness import EXECUTION

from rightsizer.aws.naming import SAGEMAKER_NAME, TAG_EXECUTION_ARN
from rightsizer.aws.smoke import SmokeTestFailed
from rightsizer.aws.validate import InvalidInput

ROOT = Path(__file__).resolve().parents[2]



# --- validate -----------------------------------------------------------------------------------


def test_validate_plans_one_item_per_type_and_writes_the_run_folder(validate, make_input, s3):
    plan = validate(make_input("ml.c5.xlarge", "ml.g4dn.xlarge"))
    run = plan["run"]
    assert run["run_id"].startswith("resnet50-20261125T194400Z-")
    assert run["run_uri"] == f"s3://rightsizer-results-test/runs/{run['run_id']}/"
    assert run["concurrency"] == 2
    assert set(plan["prices"]) == {"ml.c5.xlarge", "ml.g4dn.xlarge"}
    names = set()
    for item in plan["items"]:
        name = item["names"]["endpoint"]
        assert SAGEMAKER_NAME.match(name) and len(name) <= 63 and name == name.lower()
        assert name.startswith("rightsizer-nightly-2026-11-25-")
        names.add(name)
        assert item["create_model"] is True
        assert {"Key": TAG_EXECUTION_ARN, "Value": EXECUTION["arn"]} in item["tags"]
        assert item["poll"] == {"seconds": 0, "max": 4}
        env = {e["Name"]: e["Value"] for e in item["loadgen"]["environment"]}
        assert env["RIGHTSIZER_ENDPOINT_NAME"] == name
        assert env["RIGHTSIZER_INSTANCE_TYPE"] == item["instance_type"]
        assert json.loads(env["RIGHTSIZER_PAYLOADS"])[0]["path"] == run["payloads"][0]["path"]
    assert run["payloads"][0]["path"] == f"{run['run_uri']}payloads/0"
    assert len(names) == 2
    assert plan["model"] == {
        "PrimaryContainer": {"ModelPackageName": make_input()["model"]["arn"]},
        "EnableNetworkIsolation": True,
    }
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="rightsizer-results-test",
                                                  Prefix="runs/")["Contents"]}
    assert keys == {f"runs/{run['run_id']}/input.json", f"runs/{run['run_id']}/payloads/0"}


def test_validate_is_deterministic_for_one_execution(validate, make_input):
    first, second = validate(make_input("ml.c5.xlarge")), validate(make_input("ml.c5.xlarge"))
    assert first["run"]["run_id"] == second["run"]["run_id"]
    assert first["items"][0]["names"] == second["items"][0]["names"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"instance_types": ["ml.c5.xlarge", "c5.large"]}, "instance_types[1].instance_type:"),
        ({"traffic": {"min_rps": 0, "max_rps": 5}}, "traffic.min_rps: Input should be greater"),
        ({"concurency": 2}, "concurency: unknown field"),
        ({"model": {"kind": "synthetic"}, "instance_types": ["local.1cpu"],
          "prices": {"local.1cpu": 0.1}}, "model.kind: a 'synthetic' model runs only"),
        ({"region": "eu-west-1"}, "region: this stack runs in us-east-1"),
        ({"results": "s3://someone-elses-bucket/x"}, "results: on AWS results go to"),
        ({"model": {"kind": "model_package", "arn":
                    "arn:aws:sagemaker:eu-west-1:865070037744:model-package/resnet"}},
         "model.arn: the model package is in eu-west-1"),
        ({"instance_types": ["ml.c5.xlarge", "ml.inf9.xlarge"]}, "prices: no price for"),
        ({"max_cost_usd": 0.01}, "max_cost_usd: the worst case is at most $"),
        ({"model": {"kind": "image", "image_uri": "1.dkr.ecr.us-east-1.amazonaws.com/m:1",
                    "model_data_url": "s3://other-bucket/model.tar.gz"}},
         "model.model_data_url: the endpoints' role reads"),
    ],
)
def test_validate_rejects_with_the_field_and_creates_nothing(
    validate, make_input, s3, change, message
):
    with pytest.raises(InvalidInput) as raised:
        validate(make_input("ml.c5.xlarge", **change))
    assert message in str(raised.value)
    assert "Contents" not in s3.list_objects_v2(Bucket="rightsizer-results-test")  \
        or all(not k["Key"].startswith("runs/") for k in s3.list_objects_v2(
            Bucket="rightsizer-results-test")["Contents"])


def test_validate_rejects_a_json_string_that_is_not_an_object(validate):
    with pytest.raises(InvalidInput, match=r"\(input\): must be a JSON object"):
        validate(["ml.c5.xlarge"])  # type: ignore[arg-type]


def test_validate_caps_concurrency_at_the_stack_setting(validate, make_input, monkeypatch):
    monkeypatch.setenv("RIGHTSIZER_MAX_CONCURRENCY", "1")
    plan = validate(make_input("ml.c5.xlarge", "ml.m5.xlarge"))
    assert plan["run"]["concurrency"] == 1
    assert "capped at 1" in plan["run"]["notes"][0]


def test_validate_uses_an_existing_model_without_creating_one(validate, make_input):
    plan = validate(make_input("ml.c5.xlarge", model={"kind": "existing", "name": "my-model"}))
    item = plan["items"][0]
    assert item["create_model"] is False and item["model_name"] == "my-model"


def test_example_input_validates_on_aws(s3, call):
    """examples/aws/resnet50-input.json, its payload uploaded as docs/aws.md says."""
    s3.put_object(Bucket="rightsizer-results-test", Key="payloads/leaves.jpg",
                  Body=(ROOT / "examples/aws/payloads/leaves.jpg").read_bytes())
    data = json.loads((ROOT / "examples/aws/resnet50-input.json").read_text())
    plan = call("validate", {"input": data, "execution": EXECUTION})
    assert [i["instance_type"] for i in plan["items"]] == data["instance_types"]
    assert plan["run"]["worst_case_cost_usd"] < data["max_cost_usd"]


def test_example_input_validates_locally():
    """The same file passes the local schema (payload path relative to the input file)."""
    from rightsizer.payloads import load_payloads
    from rightsizer.schema import BenchmarkInput

    for name in ("resnet50-input.json", "resnet50-gpu-input.json"):
        path = ROOT / "examples" / "aws" / name
        bench = BenchmarkInput.model_validate_json(path.read_text())
        assert load_payloads(list(bench.payloads), base_dir=path.parent)[0].body[:2] == b"\xff\xd8"


# --- smoke test ---------------------------------------------------------------------------------


@pytest.fixture
def deployed(validate, make_input, patched_services):
    """A planned item whose endpoint exists in moto (created directly, not by the ASL)."""
    def deploy(instance_type: str = "ml.c5.xlarge", accept: str | None = "application/json",
               more: list[dict[str, Any]] | None = None):
        payloads = [{"path": "payloads/cat.jpg", "content_type": "image/jpeg", "accept": accept},
                    *(more or [])]
        plan = validate(make_input(instance_type, payloads=payloads))
        item = plan["items"][0]
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model(ModelName=item["names"]["model"], ExecutionRoleArn="arn:aws:iam::"
                               "123456789012:role/r", PrimaryContainer=plan["model"][
                                   "PrimaryContainer"])
        sagemaker.create_endpoint_config(EndpointConfigName=item["names"]["endpoint_config"],
                                         ProductionVariants=[{
                                             "VariantName": "AllTraffic",
                                             "ModelName": item["names"]["model"],
                                             "InstanceType": instance_type,
                                             "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName=item["names"]["endpoint"],
                                  EndpointConfigName=item["names"]["endpoint_config"])
        return {"item": item, "run": plan["run"]}

    return deploy


def test_smoke_test_passes_on_a_healthy_endpoint(deployed, call):
    result = call("smoke_test", deployed())
    assert result["payloads"] == 1 and result["content_types"] == ["application/json"]
    assert result["response_bytes"][0] > 0


def test_smoke_test_sends_every_payload_and_names_the_one_that_fails(
    deployed, call, s3, patched_services
):
    s3.put_object(Bucket="rightsizer-results-test", Key="payloads/dog.jpg", Body=b"dog bytes")
    event = deployed(more=[{"path": "payloads/dog.jpg", "content_type": "image/jpeg",
                            "accept": "image/png"}])
    with pytest.raises(SmokeTestFailed, match=r"payloads\[1\]: the endpoint answered with "
                       "Content-Type 'application/json', but the payload asks for 'image/png'"):
        _smoke(event, seconds_left=900)  # the Timeout template.yaml should give the function
    assert patched_services.smoke_bodies[-1] == b"dog bytes"


def test_smoke_test_stops_before_a_payload_its_time_cannot_hold(deployed, patched_services):
    event = deployed(more=[{"path": "payloads/cat.jpg", "content_type": "image/jpeg"}])
    with pytest.raises(SmokeTestFailed, match=r"payloads\[1\]: not sent: 79 s of the smoke "
                       "test's time are left and an answer may take 80 s"):
        _smoke(event, seconds_left=84)
    assert len(patched_services.smoke_calls) == 1


def _smoke(event: dict[str, Any], seconds_left: float) -> dict[str, Any]:
    """The handler's work with a Lambda that has ``seconds_left`` (conftest's context: 60 s)."""
    from rightsizer.aws.events import SmokeTestEvent
    from rightsizer.aws.smoke import run_smoke_test, runtime_client

    return run_smoke_test(SmokeTestEvent.model_validate(event),
                          runtime=runtime_client("us-east-1"),
                          s3=boto3.client("s3", region_name="us-east-1"),
                          seconds_left=lambda: seconds_left)


def test_the_runtime_client_makes_one_attempt(monkeypatch):
    """botocore's max_attempts 1 would be two tries; a 503 must reach the smoke test at once."""
    from http.server import BaseHTTPRequestHandler

    from botocore.exceptions import ClientError
    from loopback import send_whole, serving

    from rightsizer.aws.smoke import runtime_client

    requests: list[str] = []

    class Unavailable(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.path)
            send_whole(self, 503, b"{}")

        def log_message(self, *args: object) -> None:
            pass

    original = boto3.client
    with serving(Unavailable) as base_url:
        monkeypatch.setattr(boto3, "client", lambda *a, **k: original(
            *a, endpoint_url=base_url, **k))
        with pytest.raises(ClientError):
            runtime_client("us-east-1").invoke_endpoint(EndpointName="e", Body=b"x")
    assert len(requests) == 1


def test_smoke_test_reports_the_models_own_error(deployed, call, patched_services):
    patched_services.model_error["ml.c5.xlarge"] = (415, "unsupported content type image/jpeg")
    with pytest.raises(SmokeTestFailed) as raised:
        call("smoke_test", deployed())
    text = str(raised.value)
    assert "the model answered 415: unsupported content type image/jpeg" in text
    assert "log-group:/aws/sagemaker/Endpoints/rightsizer-" in text


def test_smoke_test_rejects_the_wrong_content_type(deployed, call):
    with pytest.raises(SmokeTestFailed, match="answered with Content-Type 'application/json'"):
        call("smoke_test", deployed(accept="image/png"))


def test_smoke_test_of_a_missing_endpoint_says_so(deployed, call):
    event = deployed()
    event["item"]["names"]["endpoint"] = "rightsizer-gone"
    with pytest.raises(SmokeTestFailed, match="InvokeEndpoint failed with ValidationException"):
        call("smoke_test", event)


# --- recommend (finish) -------------------------------------------------------------------------


def _outcome(
    s3: Any, plan: dict[str, Any], cleanup: dict[str, Any] | None = None, **outcome: Any
) -> dict[str, Any]:
    """The first item's iteration ended with ``outcome``: its outcome.json and its record."""
    item = plan["items"][0]
    key = f"{item['instance_type']}/outcome.json"
    state = {"item": item, "outcome": outcome, "created": {}, "cleanup": cleanup or {}}
    s3.put_object(Bucket="rightsizer-results-test", Key=f"runs/{plan['run']['run_id']}/{key}",
                  Body=json.dumps(state).encode())
    return {"instance_type": item["instance_type"], "instance_count": 1,
            "status": outcome["status"], "outcome_key": key}


def test_recommend_fails_a_type_whose_task_left_no_summary(validate, make_input, call, s3):
    plan = validate(make_input("ml.c5.xlarge"))
    result = call("recommend", {"run": plan["run"], "prices": plan["prices"], "outcomes": [
        _outcome(s3, plan, status="succeeded", task_arn="arn:aws:ecs:task/x")]})
    assert result["status"] == "failed"
    failed = result["output"]["failed_types"][0]
    assert failed["stage"] == "load_test" and "left no readable summary.json" in failed["reason"]


def test_recommend_keeps_the_containers_reason_and_reports_cleanup_problems(
    validate, make_input, call, s3
):
    from rightsizer.summary import TypeSummary

    plan = validate(make_input("ml.c5.xlarge"))
    key = f"runs/{plan['run']['run_id']}/ml.c5.xlarge/summary.json"
    s3.put_object(Bucket="rightsizer-results-test", Key=key, Body=TypeSummary(
        instance_type="ml.c5.xlarge", status="failed", failed_stage="load_test",
        reason="load generator error: RuntimeError: boom").model_dump_json())
    cause = json.dumps({"TaskArn": "arn:aws:ecs:us-east-1:1:task/c/abc", "StoppedReason":
                        "Essential container in task exited",
                        "Containers": [{"Name": "loadgen", "ExitCode": 1}]})
    result = call("recommend", {"run": plan["run"], "prices": plan["prices"], "outcomes": [
        _outcome(s3, plan, status="failed", stage="load_test",
                 error={"Error": "States.TaskFailed", "Cause": cause},
                 cleanup={"endpoint": {"Error": "SageMaker.SageMakerException",
                                       "Cause": "Cannot delete an endpoint while Creating"}})]})
    reason = result["output"]["failed_types"][0]["reason"]
    assert reason.startswith("load generator error: RuntimeError: boom (States.TaskFailed: ")
    assert "container loadgen exit code 1" in reason
    assert "deleting the endpoint failed" in result["output"]["cleanup_problems"][0]
    assert "Cannot delete an endpoint while Creating" in result["output"]["cleanup_problems"][0]


def test_pricing_api_errors_fall_back_to_the_bundled_table(validate, make_input, monkeypatch):
    """The Price List API is asked first on AWS; if it fails, the run still gets prices."""
    from rightsizer import pricing

    def refuse(self, instance_type, region):
        raise RuntimeError("AccessDeniedException: not authorized to perform pricing:GetProducts")

    monkeypatch.setenv("RIGHTSIZER_USE_PRICING_API", "true")
    monkeypatch.setattr(pricing.PricingApiPrices, "price_per_hour", refuse)
    plan = validate(make_input("ml.c5.xlarge"))
    assert plan["prices"]["ml.c5.xlarge"] == pricing.BundledPrices().price_per_hour(
        "ml.c5.xlarge", "us-east-1")
