"""The load engine against real servers on loopback: real Locust, real HTTP, real timing
(and its thin step runner against recorded samples).

Tolerances here are loose (15%) because these 2-core machines are noisy; the tight accuracy
targets are measured by benchmarks/capacity_accuracy.py, not asserted in unit tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rightsizer import engine
from rightsizer.cli import main
from rightsizer.engine import GeneratorRunner, find_max_rate
from rightsizer.loadgen.messages import NO_TOKENS
from rightsizer.loadgen.processes import (
    SAMPLE_COLUMNS,
    LoadGenerator,
    LoadGeneratorError,
    StepSamples,
)
from rightsizer.loadgen.target import HttpTarget, SageMakerTarget
from rightsizer.payloads import LoadedPayload
from rightsizer.schema import LoadSettings, Objective
from rightsizer.search_controller import StepPlan

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
    # A 3 s judged window holds enough requests for the fixed-step path (choose_slow_search).
    load = LoadSettings(step_seconds=4, warmup_seconds=1, start_rps=10, max_rps=30)
    summary = find_max_rate(HttpTarget(synthetic_endpoint), PAYLOAD, Objective(), load, tmp_path)
    assert summary.max_sustainable_rps == 30
    assert summary.bottleneck == "rate-limit"


@pytest.mark.parametrize(
    "synthetic_endpoint", [{"slots": 1, "service_ms": 200, "queue": 2}], indirect=True
)
def test_a_slow_endpoint_is_probed_closed_loop_then_confirmed_open_loop(
    synthetic_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 requests/s, 2 waiting places: a 10 s step at 5.4 rps would end before its backlog of
    # 3 overflowed the queue. The closed-loop probe measures 5.0, one open-loop step confirms.
    monkeypatch.setattr(engine, "SLOW_WARM_UP_MIN_SECONDS", 5.0)  # no cold start to outlast
    summary = find_max_rate(
        HttpTarget(synthetic_endpoint), PAYLOAD, Objective(), LoadSettings(), tmp_path
    )
    assert summary.status == "succeeded", summary.reason
    assert 5.0 * 0.95 <= summary.max_sustainable_rps <= 5.0 * 1.03
    assert any("closed-loop probe" in note for note in summary.notes)
    assert summary.steps and summary.steps[-1].duration_seconds >= 10
    # The probe is load too, and counted: more than the open-loop steps alone.
    assert summary.load_seconds > sum(step.duration_seconds for step in summary.steps)


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


class RecordedGenerator:
    """Stands in for ``LoadGenerator.step``: every request of the first second fails (HTTP 500),
    the rest succeed in 10 ms; ``lost`` requests are left unanswered."""

    def __init__(self, lost: int = 0) -> None:
        self.lost = lost
        self.calls: list[tuple[float, float, float]] = []

    def step(self, rate: float, seconds: float, drain: float) -> StepSamples:
        self.calls.append((rate, seconds, drain))
        start = 100.0
        rows = []
        for i in range(int(rate * seconds)):
            at = start + i / rate
            ok = at >= start + 1
            rows.append(
                (at, at, 10.0, ok, 200 if ok else 500, None if ok else "HTTP 500: cold",
                 *NO_TOKENS)
            )
        return StepSamples(
            target_rps=rate,
            start=start,
            end=start + seconds,
            requests=pd.DataFrame(rows, columns=SAMPLE_COLUMNS),
            unanswered=np.full(self.lost, start + seconds - 0.5),
            sent=int(rate * seconds) + self.lost,
            worker_cpu=[0.2],
        )


def test_the_runner_judges_only_after_the_plans_warm_up_and_drains_half_a_step() -> None:
    generator = RecordedGenerator()
    runner = GeneratorRunner(generator, Objective(), request_timeout=60)
    outcome = runner.run_step(StepPlan(rate=50, seconds=6, warmup_seconds=1))
    assert generator.calls == [(50, 6, 3.0)]
    assert outcome.result.passed, outcome.result.reasons  # the failing first second is discarded
    assert outcome.result.requests == 250 and outcome.unanswered == 0
    assert not outcome.generator_limited and outcome.achieved_rps == pytest.approx(50, rel=0.01)
    judged_from_start = runner.run_step(StepPlan(rate=50, seconds=6, warmup_seconds=0))
    assert not judged_from_start.result.passed
    assert judged_from_start.result.reasons[-1] == "HTTP 500: cold (x50)"  # top errors added


def test_the_runner_counts_abandoned_requests_and_caps_the_drain() -> None:
    generator = RecordedGenerator(lost=40)
    runner = GeneratorRunner(generator, Objective(), request_timeout=2.5)
    outcome = runner.run_step(StepPlan(rate=20, seconds=10, warmup_seconds=2))
    assert generator.calls == [(20, 10, 2.5)]
    assert outcome.unanswered == 40 and not outcome.result.passed
    assert "40 requests still unanswered when the step ended" in outcome.result.reasons
