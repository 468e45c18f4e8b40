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
    own = {name: (run_dir / name).read_bytes() for name in ("recommendation.json", "report.html")}
    code = main(["report", str(run_dir), "--min-rps", "150", "--max-rps", "900"])
    assert code == 0
    what_if = run_dir / "what-if" / "min-150-max-900"
    rebuilt = json.loads((what_if / "recommendation.json").read_text())
    assert (rebuilt["min_rps"], rebuilt["max_rps"]) == (150, 900)
    best = rebuilt["recommended"]
    assert best["instances_needed_at_max"] >= 900 / best["capacity_per_instance"]
    assert "local.1cpu" in (what_if / "report.html").read_text()
    # The run's own conclusion is untouched, and the what-if is no run of its own.
    assert {name: (run_dir / name).read_bytes() for name in own} == own
    capsys.readouterr()
    assert main(["history", str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out.count(outcome.run_id) == 1
    assert endpoints  # the package import is part of the public surface


def test_three_runs_of_one_name_are_listed_compared_and_a_halved_capacity_regresses(
    tmp_path: Path, spawned_pids: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 slots x 20 ms = 100 rps twice, then 2 slots x 40 ms = 50 rps: the same endpoint, slower.
    fast = {"kind": "synthetic", "slots": 2, "service_ms": 20}
    runs = [
        run_benchmark(benchmark(tmp_path, model, ["local.1cpu"]), tmp_path)
        for model in (fast, fast, {**fast, "service_ms": 40})
    ]
    first, second, halved = (Path(r.store.uri()) for r in runs)
    assert runs[0].since_last_run is None and "Since last run" not in _report(first)
    assert runs[1].since_last_run is not None
    assert runs[1].since_last_run.old.run_id == runs[0].run_id
    capsys.readouterr()

    assert main(["history", str(tmp_path / "results"), "--name", "t"]) == 0
    listed = capsys.readouterr().out
    assert [line.split()[-1] for line in listed.splitlines()[2:]] == [
        r.run_id for r in reversed(runs)
    ]  # newest first
    assert main(["history", str(tmp_path / "results"), "--name", "other"]) == 0
    assert "no runs named 'other'" in capsys.readouterr().out

    assert main(["diff", str(first), str(first)]) == 0
    # Two measurements of one endpoint differ by the search's precision, not by half.
    assert main(["diff", str(first), str(second), "--threshold", "0.3"]) == 0
    capsys.readouterr()
    assert main(["diff", str(second), str(halved)]) == 3
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "local.1cpu: capacity fell" in out

    diff = runs[2].since_last_run
    assert diff is not None and diff.regressed and diff.old.run_id == runs[1].run_id
    page = _report(halved)
    assert "Since last run" in page and "Regression" in page and "capacity fell" in page
    assert "Trend over the last 3 runs" in page
    assert json.loads((halved / "since_last_run.json").read_text())["regressions"]
    assert_all_stopped(spawned_pids)


def _report(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text()
