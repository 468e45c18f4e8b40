"""One ending for every run: recommendation, prices and report, and a report rebuilt from them."""

from __future__ import annotations

from pathlib import Path

from rightsizer.pipeline import rebuild_report
from rightsizer.results import stored_prices, write_results
from rightsizer.schema import BenchmarkInput
from rightsizer.store import INPUT, PRICES, LocalRunStore, write_json, write_summary
from rightsizer.summary import TypeSummary, failed_summary

BENCH = BenchmarkInput.model_validate({
    "name": "t",
    "model": {"kind": "synthetic"},
    "instance_types": ["local.1cpu", "local.2cpu"],
    "payloads": [{"body": "{}", "content_type": "application/json"}],
    "traffic": {"min_rps": 10, "max_rps": 50},
    "prices": {"local.1cpu": 0.1, "local.2cpu": 0.2},
})


def a_run(tmp_path: Path) -> LocalRunStore:
    store = LocalRunStore(tmp_path, "t-run")
    write_json(store, INPUT, BENCH.model_dump(mode="json"))
    write_summary(store, TypeSummary(instance_type="local.1cpu", status="succeeded",
                                     max_sustainable_rps=100.0, bottleneck="endpoint"))
    write_summary(store, failed_summary("local.2cpu", 1, "smoke_test", "the model answered 500"))
    return store


def test_a_rebuilt_report_uses_the_prices_the_run_used(tmp_path: Path) -> None:
    store = a_run(tmp_path)
    ran_at = {"local.1cpu": 0.7, "local.2cpu": 0.9}  # e.g. the Price List API's, on AWS
    first = write_results(store, BENCH, [], ran_at)
    assert stored_prices(store) == ran_at and first.recommendation.recommended is None
    rebuilt = rebuild_report(store.path)
    best = rebuilt.recommendation.recommended
    assert best is not None and best.cost_per_hour_at_max == 0.7  # not the input's 0.1
    assert rebuilt.notes == []


def test_a_run_without_stored_prices_is_priced_in_its_region_and_says_so(
    tmp_path: Path,
) -> None:
    store = a_run(tmp_path)
    outcome = rebuild_report(store.path)
    assert outcome.notes and "priced in its input's region, us-east-1" in outcome.notes[0]
    assert stored_prices(store) == {"local.1cpu": 0.1, "local.2cpu": 0.2}
    assert (store.path / PRICES).is_file()


def test_a_failed_summary_is_finished_and_bounded() -> None:
    summary = failed_summary("ml.c5.xlarge", 2, "deploy", "x" * 5000, method="legacy")
    assert (summary.status, summary.failed_stage, summary.instance_count) == (
        "failed", "deploy", 2)
    assert summary.finished_at and len(summary.reason or "") == 2000
    assert summary.method == "legacy"
