"""Text generation in the recommendation and the report: tokens/s, TTFT, cost per M tokens."""

from __future__ import annotations

import pytest

from rightsizer.recommend import evaluate, recommend_for_input
from rightsizer.report import render_report
from rightsizer.schema import BenchmarkInput
from rightsizer.summary import StepResult, TokenStats, TypeSummary

PRICES = {"ml.g5.xlarge": 1.4}


def generation_step(rps: float, passed: bool, tokens_per_request: float = 64) -> StepResult:
    return StepResult(
        target_rps=rps, achieved_rps=rps, offered_rps=rps, requests=int(rps * 30), failures=0,
        failure_rate=0.0, p50_ms=1500, p95_ms=1800, p99_ms=1900, passed=passed,
        tokens=TokenStats(
            streamed=True, counted="reported", output_tokens=int(rps * 30 * tokens_per_request),
            output_tokens_per_second=rps * tokens_per_request, tokens_per_request_p50=64,
            ttft_p50_ms=120, ttft_p90_ms=180, ttft_p99_ms=240, itl_p50_ms=22, itl_p99_ms=30,
            request_tokens_per_second_p10=35, request_tokens_per_second_p50=42,
        ),
    )


def llm_summary(instance_type: str, count: int = 1) -> TypeSummary:
    return TypeSummary(
        instance_type=instance_type, instance_count=count, status="succeeded",
        max_sustainable_rps=2.0, bottleneck="endpoint",
        steps=[generation_step(1.0, True), generation_step(2.0, True),
               generation_step(2.5, False)],
    )


def bench() -> BenchmarkInput:
    return BenchmarkInput.model_validate({
        "model": {"kind": "existing", "name": "llm"},
        "instance_types": ["ml.g5.xlarge"],
        "payloads": [{"body": '{"inputs": "hi", "stream": true}',
                      "content_type": "application/json", "stream": True}],
        "traffic": {"min_rps": 0.5, "max_rps": 4},
        "objective": {"ttft_percentile": 90, "max_ttft_ms": 500},
    })


def test_cost_per_million_output_tokens_is_the_peak_fleet_over_its_tokens() -> None:
    option = evaluate(llm_summary("ml.g5.xlarge", count=2), 0.5, 4.0, 0.7, 1.4)
    assert option.tokens is not None
    # Two instances tested: 2 rps x 64 tokens = 128 tokens/s, 64 per instance.
    assert option.tokens.output_tokens_per_second == pytest.approx(64)
    assert option.tokens.tokens_per_request == pytest.approx(64)
    assert option.tokens.ttft_p90_ms == 180
    fleet = option.cost_per_hour_at_max
    assert fleet is not None
    assert option.cost_per_million_output_tokens == pytest.approx(
        fleet / (4.0 * 64 * 3600) * 1e6
    )


def test_a_classic_model_has_no_token_figures() -> None:
    summary = llm_summary("ml.g5.xlarge")
    for s in summary.steps:
        s.tokens = None
    option = evaluate(summary, 0.5, 4.0, 0.7, 1.4)
    assert option.tokens is None and option.cost_per_million_output_tokens is None


def test_the_report_shows_ttft_tokens_per_second_and_cost_per_million_tokens() -> None:
    b = bench()
    summaries = [llm_summary("ml.g5.xlarge")]
    rec = recommend_for_input(b, summaries, PRICES)
    page = render_report(rec, summaries, b, "run-1")
    assert "<h2>Text generation</h2>" in page
    assert "output tokens/s" in page and "$ per M<br>output tokens" in page
    assert "120.0 / 180.0 / 240.0" in page  # TTFT p50 / p90 / p99 of the type
    assert "p90 TTFT &le; 500 ms" in page
    assert "per million output tokens at peak" in page


def test_a_classic_report_has_no_generation_section() -> None:
    b = bench()
    summary = llm_summary("ml.g5.xlarge")
    for s in summary.steps:
        s.tokens = None
    rec = recommend_for_input(b, [summary], PRICES)
    page = render_report(rec, [summary], b, "run-1")
    assert "Text generation" not in page and "TTFT" not in page
