"""Fixtures for tests/aws: moto, the fakes of ``harness`` (what is real and what is faked is
described there) and a deployed stack running the real ASL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from harness import (
    BUCKET,
    EXECUTION,
    PAYLOAD_BYTES,
    PAYLOAD_KEY,
    PREFIX,
    REGION,
    Scenario,
    Stack,
    benchmark_input,
    call_handler,
    deploy,
    install_all,
)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the template sets on every function and task, with short bounds for tests."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "RIGHTSIZER_NAME_PREFIX": PREFIX,
        "RIGHTSIZER_RESULTS_BUCKET": BUCKET,
        "RIGHTSIZER_POLL_SECONDS": "0",
        "RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS": "4",
        "RIGHTSIZER_LOADGEN_STARTUP_SECONDS": "600",
        "RIGHTSIZER_MAX_CONCURRENCY": "5",
        "RIGHTSIZER_USE_PRICING_API": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def call() -> Callable[[str, dict[str, Any]], Any]:
    """``call("validate", event)``: a handler under functions/, called as Lambda calls it."""
    return call_handler


@pytest.fixture
def validate(
    s3: Any, payload: str, call: Callable[[str, dict[str, Any]], Any]
) -> Callable[[dict[str, Any]], Any]:
    """``validate(input)``: the Validate handler for one input, as execution ``EXECUTION``."""

    def run(data: dict[str, Any]) -> Any:
        return call("validate", {"input": data, "execution": EXECUTION})

    return run


@pytest.fixture
def moto_aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                          "lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def s3(moto_aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def patched_services(monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """Every fake of ``harness`` installed; the Scenario they obey."""
    return install_all(monkeypatch)


@pytest.fixture
def asl_overrides() -> dict[str, Any]:
    """Top-level fields replaced in the definition; a test parametrizes it (e.g. TimeoutSeconds)."""
    return {}


@pytest.fixture
def stack(s3: Any, patched_services: Scenario, asl_overrides: dict[str, Any]) -> Stack:
    """The template's resources, made in moto, and the real ASL with substitutions applied."""
    return deploy(s3, patched_services, asl_overrides)


@pytest.fixture
def make_input() -> Callable[..., dict[str, Any]]:
    return benchmark_input


@pytest.fixture
def payload(s3: Any) -> str:
    s3.put_object(Bucket=BUCKET, Key=PAYLOAD_KEY, Body=PAYLOAD_BYTES)
    return f"s3://{BUCKET}/{PAYLOAD_KEY}"
