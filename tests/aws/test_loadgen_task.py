"""The Fargate load generator's entrypoint: parameters, upload, exit codes (engine faked).

The real load engine (``rightsizer.engine.find_max_rate``) is tested elsewhere (and run for real
inside the container in ``test_fargate_container.py``); here it is replaced so the test checks
what the container itself does: parse its environment, read the payload copy from S3, give the
engine all the task's vCPUs and a ``target_health`` hook that asks SageMaker (moto) for the
endpoint's status, check its scratch folder, upload the results, exit non-zero on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rightsizer.aws.loadgen_task import (
    EXIT_BAD_PARAMETERS,
    EXIT_FAILED,
    EXIT_OK,
    TaskParameterError,
    main,
    params_from_env,
)
from rightsizer.summary import TypeSummary

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "rightsizer-results-test"
RUN_ID = "resnet50-20261125T194400Z-abc123"


@pytest.fixture
def env(s3) -> dict[str, str]:
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/payloads/0", Body=b"payload bytes")
    return {
        "RIGHTSIZER_ENDPOINT_NAME": "rightsizer-run-c5-xlarge-abcdef",
        "RIGHTSIZER_REGION": "us-east-1",
        "RIGHTSIZER_INSTANCE_TYPE": "ml.c5.xlarge",
        "RIGHTSIZER_INSTANCE_COUNT": "2",
        "RIGHTSIZER_RESULTS_URI": f"s3://{BUCKET}",
        "RIGHTSIZER_RUN_ID": RUN_ID,
        "RIGHTSIZER_OBJECTIVE": json.dumps({"latency_percentile": 99, "max_latency_ms": 300}),
        "RIGHTSIZER_LOAD": json.dumps({"step_seconds": 30, "processes": 1}),
        "RIGHTSIZER_PAYLOADS": json.dumps([{"path": f"s3://{BUCKET}/runs/{RUN_ID}/payloads/0",
                                            "content_type": "image/jpeg"}]),
        "RIGHTSIZER_PROCESSES": "4",
    }


def test_parameters_come_from_the_environment(env):
    params = params_from_env(env)
    assert params.endpoint_name == "rightsizer-run-c5-xlarge-abcdef"
    assert params.instance_count == 2
    assert params.objective.max_latency_ms == 300
    assert params.load.step_seconds == 30
    assert params.processes == 4
    assert params.payloads[0].path == f"s3://{BUCKET}/runs/{RUN_ID}/payloads/0"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"RIGHTSIZER_ENDPOINT_NAME": ""}, "RIGHTSIZER_ENDPOINT_NAME is not set"),
        ({"RIGHTSIZER_OBJECTIVE": "{not json"}, "RIGHTSIZER_OBJECTIVE:"),
        ({"RIGHTSIZER_LOAD": '{"step_seconds": 1}'}, "RIGHTSIZER_LOAD: step_seconds:"),
        ({"RIGHTSIZER_PAYLOADS": "[]"}, "RIGHTSIZER_PAYLOADS: the list is empty"),
        ({"RIGHTSIZER_PROCESSES": "zero"}, "RIGHTSIZER_PROCESSES='zero' is not an integer"),
        ({"RIGHTSIZER_RESULTS_URI": "/tmp/results"}, "is not an s3:// URI"),
    ],
)
def test_bad_parameters_name_the_variable(env, change, message):
    with pytest.raises(TaskParameterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        params_from_env({**env, **change})


def test_processes_default_to_the_cpu_count(env):
    del env["RIGHTSIZER_PROCESSES"]
    assert params_from_env(env).processes == (os.cpu_count() or 1)


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])


def test_measures_with_all_vcpus_and_uploads_results(env, s3):
    seen: dict[str, Any] = {}

    def find_max_rate(target, payloads, objective, load, out_dir, *, instance_type="",
                      instance_count=1, progress=None, target_health=None):
        seen.update(target=target, body=payloads[0].body, processes=load.processes,
                    instance_count=instance_count, health=target_health)
        (Path(out_dir) / "step_001_stats.csv").write_text("Type,Name\n")
        (Path(out_dir) / "summary.json").write_text("{}")  # the engine's own copy: replaced
        return TypeSummary(instance_type=instance_type, instance_count=instance_count,
                           status="succeeded", max_sustainable_rps=42.0, bottleneck="endpoint")

    assert main(env, s3=s3, find_max_rate=find_max_rate) == EXIT_OK
    assert seen["target"].endpoint_name == "rightsizer-run-c5-xlarge-abcdef"
    assert seen["target"].region == "us-east-1"
    assert seen["body"] == b"payload bytes"
    assert seen["processes"] == 4 and seen["instance_count"] == 2
    assert seen["health"].endpoint_name == "rightsizer-run-c5-xlarge-abcdef"
    prefix = f"runs/{RUN_ID}/ml.c5.xlarge/"
    assert {f"{prefix}step_001_stats.csv", f"{prefix}summary.json"} <= set(_keys(s3))
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}summary.json")["Body"].read())
    assert summary["max_sustainable_rps"] == 42.0


def test_a_crash_exits_non_zero_and_leaves_a_failed_summary(env, s3):
    def find_max_rate(*args, **kwargs):
        raise ConnectionError("could not reach runtime.sagemaker.us-east-1.amazonaws.com")

    assert main(env, s3=s3, find_max_rate=find_max_rate) == EXIT_FAILED
    key = f"runs/{RUN_ID}/ml.c5.xlarge/summary.json"
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert summary["status"] == "failed" and summary["failed_stage"] == "load_test"
    assert "ConnectionError: could not reach runtime.sagemaker" in summary["reason"]


def test_bad_parameters_exit_with_code_2(env, s3):
    assert main({**env, "RIGHTSIZER_RUN_ID": ""}, s3=s3) == EXIT_BAD_PARAMETERS


def test_the_entrypoint_script_runs_and_reports_missing_parameters():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RIGHTSIZER_")}
    clean["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run([sys.executable, "loadgen_container/entrypoint.py"], cwd=ROOT,
                            env=clean, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == EXIT_BAD_PARAMETERS, result.stderr
    assert "RIGHTSIZER_PAYLOADS is not set" in result.stderr


def test_dockerfile_installs_the_package_with_the_loadgen_extra():
    dockerfile = (ROOT / "loadgen_container" / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.12-slim" in dockerfile
    assert 'pip install ".[loadgen]"' in dockerfile
    assert "COPY loadgen_container/entrypoint.py" in dockerfile
    assert "USER 10001" in dockerfile  # not root
    ignore = (ROOT / "loadgen_container" / "Dockerfile.dockerignore").read_text()
    assert "!src/" in ignore and "!loadgen_container/entrypoint.py" in ignore


def test_build_script_parses_and_explains_itself():
    script = ROOT / "scripts" / "build-loadgen-image.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    result = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True,
                            check=False, timeout=30)
    assert result.returncode == 0 and "ECR" in result.stdout


def test_entrypoint_rerun_by_a_spawned_worker_imports_no_ssl():
    # multiprocessing's spawn re-runs the entrypoint's top level as __mp_main__ in every
    # worker; ssl imported there before Locust's gevent patch makes the worker recurse and die.
    code = ("import runpy, sys; runpy.run_path('loadgen_container/entrypoint.py', "
            "run_name='__mp_main__'); print('ssl' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_a_scratch_folder_it_cannot_write_fails_in_one_line(env, s3, tmp_path, caplog):
    missing = tmp_path / "not-mounted"
    code = main({**env, "TMPDIR": str(missing)}, s3=s3,
                find_max_rate=lambda *a, **k: pytest.fail("the load must not start"))
    assert code == EXIT_FAILED
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"load test failed: the scratch folder {missing} is not writable by uid "
                      f"{os.getuid()} (cannot stat it: No such file or directory; "
                      "No such file or directory): the image must create it writable by that "
                      f'user and declare VOLUME ["{missing}"] (loadgen_container/Dockerfile)']
    key = f"runs/{RUN_ID}/ml.c5.xlarge/summary.json"
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert summary["status"] == "failed" and str(missing) in summary["reason"]


# --- endpoint health while the load runs (DescribeEndpoint, moto) -------------------------------

ENDPOINT = "rightsizer-run-c5-xlarge-abcdef"


@pytest.fixture
def sagemaker(moto_aws) -> Any:
    import boto3

    client = boto3.client("sagemaker", region_name="us-east-1")
    client.create_model(
        ModelName=ENDPOINT, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
    )
    client.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": ENDPOINT, "InitialInstanceCount": 1,
        "InstanceType": "ml.c5.xlarge"}])
    client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    return client


def set_status(status: str, failure_reason: str | None = None) -> None:
    """What SageMaker would report next: moto's endpoints are InService and stay so."""
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends["123456789012"]["us-east-1"].endpoints[ENDPOINT]
    endpoint.endpoint_status = status
    endpoint.failure_reason = failure_reason


@pytest.mark.parametrize(
    ("status", "failure_reason", "reason"),
    [
        ("InService", None, None),
        ("Updating", None, None),
        ("SystemUpdating", None, None),
        ("Failed", "The primary container for production variant AllTraffic did not pass the "
                   "ping health check.",
         f"SageMaker reports endpoint {ENDPOINT} as Failed: The primary container for "
         "production variant AllTraffic did not pass the ping health check."),
        ("OutOfService", None, f"SageMaker reports endpoint {ENDPOINT} as OutOfService"),
        ("Deleting", None, f"SageMaker reports endpoint {ENDPOINT} as Deleting"),
    ],
)
def test_health_follows_the_endpoint_status(sagemaker, status, failure_reason, reason):
    from rightsizer.aws.endpoint_health import EndpointHealth

    set_status(status, failure_reason)
    assert EndpointHealth(ENDPOINT, sagemaker)() == reason


def test_health_says_when_the_endpoint_is_gone(sagemaker):
    from rightsizer.aws.endpoint_health import EndpointHealth

    sagemaker.delete_endpoint(EndpointName=ENDPOINT)
    assert EndpointHealth(ENDPOINT, sagemaker)() == (
        f"SageMaker reports endpoint {ENDPOINT} no longer exists")


def test_errors_asking_sagemaker_do_not_stop_the_test_and_are_logged_once(sagemaker, caplog):
    from botocore.stub import Stubber

    from rightsizer.aws.endpoint_health import EndpointHealth

    health = EndpointHealth(ENDPOINT, sagemaker)
    with Stubber(sagemaker) as stub:
        for code in ("ThrottlingException", "ThrottlingException", "AccessDeniedException",
                     "ThrottlingException"):
            stub.add_client_error("describe_endpoint", code, f"{code} message")
        assert [health() for _ in range(4)] == [None] * 4
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert "ThrottlingException" in warnings[0] and "AccessDeniedException" in warnings[1]
    assert health() is None  # and it still asks SageMaker afterwards


def test_the_sagemaker_client_retries_in_standard_mode_three_attempts_at_most():
    from rightsizer.aws.endpoint_health import DESCRIBE_CONFIG

    assert DESCRIBE_CONFIG.retries == {"mode": "standard", "total_max_attempts": 3}


def test_an_endpoint_that_fails_mid_test_stops_the_load_with_its_reason(env, s3, sagemaker):
    asked: list[str | None] = []

    def find_max_rate(target, payloads, objective, load, out_dir, *, instance_type="",
                      instance_count=1, progress=None, target_health=None):
        # As the engine does: ask after the warm-up and after every step, stop on a reason.
        asked.append(target_health())
        set_status("Failed", "Request to service failed. If failure persists, contact support.")
        asked.append(target_health())
        return TypeSummary(instance_type=instance_type, instance_count=instance_count,
                           status="failed", failed_stage="load_test",
                           reason=f"the endpoint died during step 1 (5.0 rps): {asked[-1]}")

    assert main(env, s3=s3, sagemaker=sagemaker, find_max_rate=find_max_rate) == EXIT_OK
    assert asked == [None, f"SageMaker reports endpoint {ENDPOINT} as Failed: Request to service "
                           "failed. If failure persists, contact support."]
    key = f"runs/{RUN_ID}/ml.c5.xlarge/summary.json"
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert summary["status"] == "failed" and "as Failed: Request to service" in summary["reason"]
