"""The end of every run, local or on AWS: recommend, compare, then write what the run concluded.

``recommendation.json``, ``prices.json`` (the USD per instance-hour it used, so that a report
rebuilt later prices the same way), ``since_last_run.json`` (the comparison with the previous
successful run of the same name, when there is one) and ``report.html``, in the run's folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rightsizer.history import (
    TREND_RUNS,
    RunDiff,
    RunRecord,
    compare,
    earlier_run_ids,
    run_record,
)
from rightsizer.recommend import Recommendation, recommend_for_input
from rightsizer.report import render_report
from rightsizer.schema import BenchmarkInput
from rightsizer.store import (
    PRICES,
    RECOMMENDATION,
    REPORT,
    SINCE_LAST_RUN,
    RunStore,
    read_json,
    read_optional,
    results_of,
    write_json,
)
from rightsizer.summary import TypeSummary


@dataclass(frozen=True)
class Conclusion:
    """What a run concluded, and how that compares with the run before it."""

    recommendation: Recommendation
    since_last_run: RunDiff | None = None
    trend: list[RunRecord] = field(default_factory=list)  # oldest first, this run last


def write_results(
    store: RunStore,
    benchmark: BenchmarkInput,
    summaries: Sequence[TypeSummary],
    prices: Mapping[str, float],
    *,
    compare_runs: bool = True,
) -> Conclusion:
    """Recommend from ``summaries`` at ``prices``; compare with the previous successful run of the
    same name (unless ``compare_runs`` is off: a what-if); write recommendation, prices, the
    comparison and the report."""
    recommendation = recommend_for_input(benchmark, summaries, prices)
    write_json(store, RECOMMENDATION, recommendation.model_dump(mode="json"))
    write_json(store, PRICES, {"region": benchmark.region, "usd_per_hour": dict(prices)})
    conclusion = _compared(store, recommendation) if compare_runs else Conclusion(recommendation)
    if conclusion.since_last_run is not None:
        write_json(store, SINCE_LAST_RUN, conclusion.since_last_run.model_dump(mode="json"))
    html = render_report(recommendation, summaries, benchmark, store.run_id,
                         since_last_run=conclusion.since_last_run, trend=conclusion.trend)
    store.write_bytes(REPORT, html.encode(), "text/html; charset=utf-8")
    return conclusion


def _compared(store: RunStore, recommendation: Recommendation) -> Conclusion:
    current = run_record(store.run_id, store.uri(), recommendation)
    if current is None:  # a run id rightsizer did not make: no name to index it by
        return Conclusion(recommendation)
    earlier = earlier_successful_runs(store, TREND_RUNS - 1)
    diff = compare(earlier[0], current) if earlier else None
    return Conclusion(recommendation, diff, [*reversed(earlier), current])


def earlier_successful_runs(store: RunStore, limit: int) -> list[RunRecord]:
    """Up to ``limit`` earlier runs of this run's name that recommended a type, newest first."""
    results = results_of(store)
    if results is None:
        return []
    found: list[RunRecord] = []
    for run_id in earlier_run_ids(results.run_ids(), store.run_id):
        record = read_record(results.run(run_id))
        if record is not None and record.status == "succeeded":
            found.append(record)
            if len(found) == limit:
                break
    return found


def read_record(store: RunStore) -> RunRecord | None:
    """A stored run's record (``unfinished`` while it has no readable recommendation)."""
    raw = read_optional(store, RECOMMENDATION)
    recommendation = None
    if raw is not None:
        try:
            recommendation = Recommendation.model_validate_json(raw)
        except ValidationError:  # written by an older version: nothing to compare with
            recommendation = None
    return run_record(store.run_id, store.uri(), recommendation)


def stored_prices(store: RunStore) -> dict[str, float] | None:
    """The prices a run's recommendation used, or None for a run written before they were kept."""
    if PRICES not in store.list_keys():
        return None
    stored: Any = read_json(store, PRICES)
    return {str(name): float(usd) for name, usd in stored["usd_per_hour"].items()}
