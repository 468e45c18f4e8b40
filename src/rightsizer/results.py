"""The end of every run, local or on AWS: recommend, then write what the run concluded.

``recommendation.json``, ``prices.json`` (the USD per instance-hour it used, so that a report
rebuilt later prices the same way) and ``report.html``, in the run's folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rightsizer.recommend import Recommendation, recommend_for_input
from rightsizer.report import render_report
from rightsizer.schema import BenchmarkInput
from rightsizer.store import PRICES, RECOMMENDATION, REPORT, RunStore, read_json, write_json
from rightsizer.summary import TypeSummary


def write_results(
    store: RunStore,
    benchmark: BenchmarkInput,
    summaries: Sequence[TypeSummary],
    prices: Mapping[str, float],
) -> Recommendation:
    """Recommend from ``summaries`` at ``prices``; write the recommendation, prices and report."""
    recommendation = recommend_for_input(benchmark, summaries, prices)
    write_json(store, RECOMMENDATION, recommendation.model_dump(mode="json"))
    write_json(store, PRICES, {"region": benchmark.region, "usd_per_hour": dict(prices)})
    html = render_report(recommendation, summaries, benchmark, store.run_id)
    store.write_bytes(REPORT, html.encode(), "text/html; charset=utf-8")
    return recommendation


def stored_prices(store: RunStore) -> dict[str, float] | None:
    """The prices a run's recommendation used, or None for a run written before they were kept."""
    if PRICES not in store.list_keys():
        return None
    stored: Any = read_json(store, PRICES)
    return {str(name): float(usd) for name, usd in stored["usd_per_hour"].items()}
