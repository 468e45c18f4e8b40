"""The whole local job: deploy, smoke test, search, results, recommendation, cleanup."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rightsizer import endpoints, pipeline
from rightsizer.cli import main
from rightsizer.endpoints import local
from rightsizer.pipeline import run_benchmark
from rightsizer.schema import BenchmarkInput

FIXTURES = Path(__file__).parent / "fixtures"
FAST_LOAD = {"step_seconds": 3, "warmup_seconds": 1, "precision": 0.1, "max_steps": 8}


def benchmark(
    tmp_path: Path, model: dict[str, Any], types: list[str], **extra: Any
) -> BenchmarkInput:
    return BenchmarkInput.model_validate(
        {
            "name": "t",
            "model": model,
            "instance_types": types,
            "payloads": [
                {"body": '{"instances": [[0, 1, 2]]}', "content_type": "application/json"}
            ],
            "traffic": {"min_rps": 10, "max_rps": 100},
            "load": FAST_LOAD,
            "prices": {t: 0.1 * (i + 1) for i, t in enumerate(types)},
            "results": str(tmp_path / "results"),
            **extra,
        }
    )


@pytest.fixture
def spawned_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the pid of every endpoint server the pipeline starts."""
    pids: list[int] = []
    original = local.LocalEndpoint._start

    def start(self: local.LocalEndpoint, port: int) -> None:
        original(self, port)
        assert self.pid is not None
        pids.append(self.pid)

    monkeypatch.setattr(local.LocalEndpoint, "_start", start)
    return pids


def assert_all_stopped(pids: list[int]) -> None:
    assert pids, "no endpoint was started"
    assert not local._LIVE
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_failed_types_are_recorded_and_cleaned_up(tmp_path: Path, spawned_pids: list[int]) -> None:
    # Both types share one model: its model_fn raises, so neither endpoint becomes ready.
    spec = benchmark(
        tmp_path,
        {"kind": "local", "path": str(FIXTURES / "broken_model")},
        ["local.1cpu", "local.2cpu"],
    )
    outcome = run_benchmark(spec, tmp_path)
    assert [s.failed_stage for s in outcome.summaries] == ["deploy", "deploy"]
    assert "weights file corrupt" in (outcome.summaries[0].reason or "")
    assert outcome.recommendation.recommended is None
    run = Path(outcome.store.uri())
    assert {p.name for p in run.iterdir()} >= {"input.json", "recommendation.json", "report.html"}
    assert json.loads((run / "local.1cpu" / "summary.json").read_text())["status"] == "failed"
    assert_all_stopped(spawned_pids)


def test_a_smoke_test_failure_carries_the_endpoints_own_error(
    tmp_path: Path, spawned_pids: list[int]
) -> None:
    spec = benchmark(
        tmp_path, {"kind": "local", "path": str(FIXTURES / "failing_predict")}, ["local.1cpu"]
    )
    summary = run_benchmark(spec, tmp_path).summaries[0]
    assert summary.failed_stage == "smoke_test"
    assert "expected 64 pixels, got 3" in (summary.reason or "")
    assert_all_stopped(spawned_pids)


def test_an_error_during_the_load_test_still_deletes_the_endpoint(
    tmp_path: Path, spawned_pids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("load generator crashed")

    monkeypatch.setattr(pipeline, "find_max_rate", explode)
    spec = benchmark(tmp_path, {"kind": "synthetic", "slots": 2, "service_ms": 10}, ["local.1cpu"])
    summary = run_benchmark(spec, tmp_path).summaries[0]
    assert summary.failed_stage == "load_test"
    assert "load generator crashed" in (summary.reason or "")
    assert_all_stopped(spawned_pids)


def test_a_whole_run_recommends_and_the_report_can_be_rebuilt(
    tmp_path: Path, spawned_pids: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    # local.1cpu: 2 slots x 20 ms = 100 rps at 0.1 $/h; local.2cpu: same slots, 0.2 $/h.
    spec = benchmark(
        tmp_path, {"kind": "synthetic", "slots": 2, "service_ms": 20}, ["local.1cpu", "local.2cpu"]
    )
    outcome = run_benchmark(spec, tmp_path)
    assert [s.status for s in outcome.summaries] == ["succeeded", "succeeded"]
    for summary in outcome.summaries:
        assert summary.max_sustainable_rps == pytest.approx(100, rel=0.15)
    assert outcome.recommendation.recommended is not None
    assert outcome.recommendation.recommended.instance_type == "local.1cpu"
    assert_all_stopped(spawned_pids)

    run_dir = Path(outcome.store.uri())
    code = main(["report", str(run_dir), "--min-rps", "150", "--max-rps", "900"])
    assert code == 0
    rebuilt = json.loads((run_dir / "recommendation.json").read_text())
    assert (rebuilt["min_rps"], rebuilt["max_rps"]) == (150, 900)
    best = rebuilt["recommended"]
    assert best["instances_needed_at_max"] >= 900 / best["capacity_per_instance"]
    assert "local.1cpu" in (run_dir / "report.html").read_text()
    assert endpoints  # the package import is part of the public surface
