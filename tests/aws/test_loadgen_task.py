"""The Fargate load generator's entrypoint: parameters, upload, exit codes (engine faked).

The real load engine (``rightsizer.engine.find_max_rate``) is tested elsewhere; here it is
replaced so the test checks what the container itself does: parse its environment, read the
payload copy from S3, give the engine all the task's vCPUs, upload the results, exit non-zero
on failure.
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
                      instance_count=1, progress=None):
        seen.update(target=target, body=payloads[0].body, processes=load.processes,
                    instance_count=instance_count)
        (Path(out_dir) / "step_001_stats.csv").write_text("Type,Name\n")
        (Path(out_dir) / "summary.json").write_text("{}")  # the engine's own copy: replaced
        return TypeSummary(instance_type=instance_type, instance_count=instance_count,
                           status="succeeded", max_sustainable_rps=42.0, bottleneck="endpoint")

    assert main(env, s3=s3, find_max_rate=find_max_rate) == EXIT_OK
    assert seen["target"].endpoint_name == "rightsizer-run-c5-xlarge-abcdef"
    assert seen["target"].region == "us-east-1"
    assert seen["body"] == b"payload bytes"
    assert seen["processes"] == 4 and seen["instance_count"] == 2
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
