"""report.html: self-contained, complete, escaped."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import pytest

from rightsizer.recommend import Recommendation, recommend_for_input
from rightsizer.report import nice_range, render_report
from rightsizer.schema import BenchmarkInput
from rightsizer.summary import StepResult, TypeSummary

EVIL = "<script>alert('owned')</script>"
VOID = {"meta", "br", "line", "circle", "rect", "polygon", "img", "hr", "input", "link"}


def make_input(**extra: object) -> BenchmarkInput:
    doc: dict[str, object] = {
        "name": "digits",
        "model": {"kind": "existing", "name": "digits-model"},
        "instance_types": ["ml.c5.xlarge", "ml.m5.xlarge", "ml.g4dn.xlarge"],
        "payloads": [{"body": "{}", "content_type": "application/json"}],
        "traffic": {"min_rps": 10, "max_rps": 200},
        "objective": {"latency_percentile": 99, "max_latency_ms": 250},
        **extra,
    }
    return BenchmarkInput.model_validate(doc)


def step(
    target: float, achieved: float, passed: bool, reasons: list[str] | None = None
) -> StepResult:
    return StepResult(
        target_rps=target, achieved_rps=achieved, offered_rps=target, requests=int(target * 8),
        failures=0 if passed else 9, failure_rate=0.0 if passed else 0.05, p50_ms=12.0,
        p95_ms=40.0, p99_ms=90.0, latency_objective_ms=90.0, passed=passed,
        reasons=reasons or [],
    )


def summaries() -> list[TypeSummary]:
    return [
        TypeSummary(
            instance_type="ml.c5.xlarge", status="succeeded", max_sustainable_rps=80,
            bottleneck="endpoint", p50_ms=12, p95_ms=40, p99_ms=90,
            steps=[step(20, 20, True), step(40, 40, True), step(80, 80, True),
                   step(160, 110, False, [f"achieved 110 of 160 rps {EVIL}"])],
        ),
        TypeSummary(
            instance_type="ml.m5.xlarge", status="succeeded", max_sustainable_rps=60,
            bottleneck="load-generator", p50_ms=10, p95_ms=30, p99_ms=60,
            notes=[f"note {EVIL}"], steps=[step(30, 30, True), step(60, 60, True)],
        ),
        TypeSummary(
            instance_type="ml.g4dn.xlarge", status="failed", failed_stage="deploy",
            reason=f"CUDA error {EVIL}",
        ),
    ]


@pytest.fixture
def page() -> str:
    bi = make_input()
    rec = recommend_for_input(bi, summaries(), {"ml.c5.xlarge": 0.204, "ml.m5.xlarge": 0.23,
                                                "ml.g4dn.xlarge": 0.7364})
    return render_report(rec, summaries(), bi, "digits-20261125T000000Z-abc123")


def test_report_is_self_contained(page: str) -> None:
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered
    for needle in ("<script", "<link", "@import", "url(", " src=", "<iframe", "<img"):
        assert needle not in lowered, needle
    assert "<style>" in page  # inline CSS only


def test_report_names_every_type_and_the_choice(page: str) -> None:
    for instance_type in ("ml.c5.xlarge", "ml.m5.xlarge", "ml.g4dn.xlarge"):
        assert instance_type in page
    assert "Use <strong>ml.c5.xlarge</strong>" in page
    assert "digits-20261125T000000Z-abc123" in page
    assert "not viable" in page and "lower bound" in page


def test_report_escapes_untrusted_text(page: str) -> None:
    assert EVIL not in page
    assert html.escape(EVIL) in page  # the failure reason, the note and the step reason


def test_report_escapes_a_hostile_type_name() -> None:
    bi = make_input()
    bad = TypeSummary(instance_type="ml.x<b>.large", status="failed", reason="nope")
    rec = recommend_for_input(bi, [bad], {})
    page = render_report(rec, [bad], bi, "run<1>")
    assert "<b>" not in page and "ml.x&lt;b&gt;.large" in page and "run&lt;1&gt;" in page


def test_report_is_balanced_markup(page: str) -> None:
    class Checker(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in VOID:
                self.stack.append(tag)

        def handle_startendtag(self, tag: str, attrs: object) -> None:
            pass

        def handle_endtag(self, tag: str) -> None:
            if tag in VOID:
                return
            assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
            self.stack.pop()

    checker = Checker()
    checker.feed(page)
    assert checker.stack == []


def test_report_has_plots(page: str) -> None:
    # the price scatter, the latency plot, and one steps plot per type with steps
    assert page.count("<svg") == 4
    assert "max sustainable rate versus price" in page
    assert "steps of ml.c5.xlarge" in page
    assert "failed: achieved 110 of 160 rps" in html.unescape(page)  # the failing step's mark


def test_report_autoscaling_json_is_ready_to_paste(page: str) -> None:
    blocks = [json.loads(html.unescape(b)) for b in re.findall(r"<pre><code>(.*?)</code></pre>",
                                                               page, flags=re.S)]
    target, policy = blocks
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == pytest.approx(80 * 0.5 * 60)
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )


def test_report_without_any_viable_type() -> None:
    bi = make_input()
    failed = [TypeSummary(instance_type=t, status="failed", reason="deploy timed out")
              for t in ("ml.c5.xlarge", "ml.m5.xlarge", "ml.g4dn.xlarge")]
    rec = recommend_for_input(bi, failed, {})
    page = render_report(rec, failed, bi, "run-1")
    assert "No recommendation" in page and "deploy timed out" in page
    assert "<pre>" not in page


def test_recommendation_from_json_renders(page: str) -> None:
    # The report is rendered from recommendation.json on the AWS side: a round trip must work.
    bi = make_input()
    rec = recommend_for_input(bi, summaries(), {"ml.c5.xlarge": 0.204, "ml.m5.xlarge": 0.23})
    again = Recommendation.model_validate_json(rec.model_dump_json())
    assert render_report(again, summaries(), bi, "digits-20261125T000000Z-abc123")


@pytest.mark.parametrize(
    ("lo", "hi"), [(0, 1), (0, 0.23), (0, 118), (0, 7.3), (3, 3), (0, 1e6), (12, 4000)]
)
def test_nice_range_covers_the_data(lo: float, hi: float) -> None:
    low, high, step = nice_range(lo, hi)
    assert low <= lo and high >= hi and step > 0
    assert (high - low) / step <= 6.0001
