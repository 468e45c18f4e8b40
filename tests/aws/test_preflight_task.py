"""The load generator's check mode (RIGHTSIZER_MODE=preflight), in-process with moto's S3.

Real parts: the worker check starts a real load-generator worker process (Locust, gevent, the
signer); the runtime check opens a real TCP connection on 127.0.0.1 (the override URL stands in
for runtime.sagemaker.<region>.amazonaws.com:443). A scratch folder the task user cannot write
needs a non-root user: that case runs as uid 10001 in ``test_fargate_container.py``; here the
folder is missing instead (TMPDIR naming a volume that was never mounted).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rightsizer.aws.loadgen_task import EXIT_BAD_PARAMETERS, EXIT_FAILED, EXIT_OK, main
from rightsizer.aws.preflight import PreflightParams, runtime_address

BUCKET = "rightsizer-results-test"
RUN_ID = "resnet50-20261203T100000Z-pre123"
REPORT = f"runs/{RUN_ID}/preflight/loadgen.json"


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel completes them from the backlog)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def preflight_env(scratch: Path, port: int) -> dict[str, str]:
    return {
        "RIGHTSIZER_MODE": "preflight",
        "RIGHTSIZER_RESULTS_URI": f"s3://{BUCKET}",
        "RIGHTSIZER_RUN_ID": RUN_ID,
        "RIGHTSIZER_REGION": "us-east-1",
        "RIGHTSIZER_RUNTIME_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "TMPDIR": str(scratch),
    }


def report(s3: Any) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=REPORT)["Body"].read())


def outcomes(s3: Any) -> dict[str, bool]:
    return {check["name"]: check["ok"] for check in report(s3)["checks"]}


def failed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "FAILED" in r.getMessage()]


def test_every_check_passes_and_the_report_says_so(s3, tmp_path, listening_port, caplog):
    started = time.monotonic()
    assert main(preflight_env(tmp_path, listening_port), s3=s3) == EXIT_OK
    assert time.monotonic() - started < 60
    assert report(s3)["ok"] is True
    assert outcomes(s3) == {"scratch": True, "worker": True, "runtime": True, "results": True}
    assert failed_lines(caplog) == []
    assert list(tmp_path.iterdir()) == []  # the probe file is removed


def test_an_unreachable_runtime_host_fails_with_what_to_check(s3, tmp_path, closed_port, caplog):
    assert main(preflight_env(tmp_path, closed_port), s3=s3) == EXIT_FAILED
    assert outcomes(s3) == {"scratch": True, "worker": True, "runtime": False, "results": True}
    [line] = failed_lines(caplog)
    assert line.startswith(f"preflight runtime FAILED: cannot connect to 127.0.0.1:{closed_port}")
    assert "security group must allow outbound TCP" in line


def test_a_missing_scratch_folder_fails_naming_it(s3, tmp_path, listening_port, caplog):
    missing = tmp_path / "never-mounted"
    assert main(preflight_env(missing, listening_port), s3=s3) == EXIT_FAILED
    assert outcomes(s3) == {"scratch": False, "worker": True, "runtime": True, "results": True}
    [line] = failed_lines(caplog)
    assert f"preflight scratch FAILED: the scratch folder {missing} is not writable" in line


def test_results_it_cannot_write_fail_naming_the_key(s3, tmp_path, listening_port, caplog,
                                                       monkeypatch):
    from moto.s3.exceptions import S3AccessDeniedError
    from moto.s3.models import S3Backend

    def deny(*args: Any, **kwargs: Any) -> None:
        raise S3AccessDeniedError()

    monkeypatch.setattr(S3Backend, "put_object", deny)
    assert main(preflight_env(tmp_path, listening_port), s3=s3) == EXIT_FAILED
    [line] = failed_lines(caplog)
    assert line.startswith(f"preflight results FAILED: cannot write s3://{BUCKET}/{REPORT} ")
    assert "AccessDenied" in line and "s3:PutObject" in line
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_missing_parameters_exit_with_code_2(s3, tmp_path, listening_port, caplog):
    env = {**preflight_env(tmp_path, listening_port), "RIGHTSIZER_RUN_ID": ""}
    assert main(env, s3=s3) == EXIT_BAD_PARAMETERS
    assert "RIGHTSIZER_RUN_ID is not set" in caplog.text


def test_an_unknown_mode_is_a_bad_parameter(s3, tmp_path, listening_port, caplog):
    env = {**preflight_env(tmp_path, listening_port), "RIGHTSIZER_MODE": "prefight"}
    assert main(env, s3=s3) == EXIT_BAD_PARAMETERS
    assert "RIGHTSIZER_MODE='prefight' is not 'preflight'" in caplog.text


def test_the_runtime_host_is_the_regions_unless_overridden():
    assert runtime_address(PreflightParams("s3://b", "r", "eu-west-1")) == (
        "runtime.sagemaker.eu-west-1.amazonaws.com", 443)
    assert runtime_address(PreflightParams("s3://b", "r", "eu-west-1", "http://127.0.0.1:81")) == (
        "127.0.0.1", 81)
