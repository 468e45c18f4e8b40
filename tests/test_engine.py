"""The load engine against real servers on loopback: real Locust, real HTTP, real timing.

Tolerances here are loose (15%) because these 2-core machines are noisy; the tight accuracy
targets are measured by benchmarks/capacity_accuracy.py, not asserted in unit tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rightsizer.cli import main
from rightsizer.engine import find_max_rate
from rightsizer.loadgen.processes import LoadGenerator, LoadGeneratorError
from rightsizer.loadgen.target import HttpTarget, SageMakerTarget
from rightsizer.payloads import LoadedPayload
from rightsizer.schema import LoadSettings, Objective

PAYLOAD = [LoadedPayload(b'{"x": 1}', "application/json", None, 1.0)]
STEP_FIELDS = {
    "target_rps",
    "achieved_rps",
    "requests",
    "failures",
    "failure_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "passed",
}


def test_loadtest_command_finds_the_known_capacity(
    synthetic_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 slots x 20 ms = 100 requests/s.
    payload = tmp_path / "payload.json"
    payload.write_text('{"x": 1}')
    out = tmp_path / "out"
    code = main(
        [
            "loadtest",
            "--url",
            synthetic_endpoint,
            "--payload",
            str(payload),
            "--content-type",
            "application/json",
            "--step-seconds",
            "4",
            "--warmup-seconds",
            "1",
            "--precision",
            "0.05",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_sustainable_rps"] == pytest.approx(100, rel=0.15)
    assert summary["bottleneck"] == "endpoint"
    assert summary["steps"] and all(set(step) >= STEP_FIELDS for step in summary["steps"])
    assert any(not step["passed"] for step in summary["steps"])
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"):
        assert (out / name).stat().st_size > 0, name


def test_an_upper_bound_is_reported_as_a_rate_limit(
    synthetic_endpoint: str, tmp_path: Path
) -> None:
    load = LoadSettings(step_seconds=3, warmup_seconds=1, start_rps=10, max_rps=30)
    summary = find_max_rate(HttpTarget(synthetic_endpoint), PAYLOAD, Objective(), load, tmp_path)
    assert summary.max_sustainable_rps == 30
    assert summary.bottleneck == "rate-limit"


@pytest.mark.parametrize(
    "synthetic_endpoint", [{"slots": 1, "service_ms": 5, "failure_rate": 0.5}], indirect=True
)
def test_an_endpoint_failing_half_its_requests_is_failed(
    synthetic_endpoint: str, tmp_path: Path
) -> None:
    load = LoadSettings(step_seconds=3, warmup_seconds=1, start_rps=10, max_steps=3)
    summary = find_max_rate(HttpTarget(synthetic_endpoint), PAYLOAD, Objective(), load, tmp_path)
    assert summary.status == "failed"
    assert "failure rate" in (summary.reason or "")
    assert "HTTP 500" in " ".join(summary.steps[0].reasons)


def test_the_legacy_method_reports_locusts_moving_average(
    synthetic_endpoint: str, tmp_path: Path
) -> None:
    load = LoadSettings(method="legacy", max_seconds=10)
    summary = find_max_rate(HttpTarget(synthetic_endpoint), PAYLOAD, Objective(), load, tmp_path)
    assert summary.method == "legacy"
    assert summary.max_sustainable_rps > 0
    assert any("legacy method stopped by" in note for note in summary.notes)


def test_a_worker_that_cannot_start_says_why_in_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No credentials anywhere (and no instance metadata lookup): signing cannot start.
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    target = SageMakerTarget("ep", "us-east-1", "http://127.0.0.1:9")
    with pytest.raises(LoadGeneratorError, match="failed to start: no AWS credentials"):
        LoadGenerator(target, PAYLOAD, start_timeout=60)
