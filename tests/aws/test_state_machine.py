"""The real statemachine/rightsize.asl.json, executed by moto's interpreter (see conftest.py)."""

from __future__ import annotations

import json
from typing import Any

THREE_TYPES = ("ml.c5.xlarge", "ml.m5.xlarge", "ml.g4dn.xlarge")


def output_of(described: dict[str, Any]) -> dict[str, Any]:
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def test_three_types_all_succeed(stack, payload, make_input):
    stack.scenario.capacity_rps.update({"ml.c5.xlarge": 20, "ml.m5.xlarge": 15,
                                        "ml.g4dn.xlarge": 120})
    described = stack.run(make_input(*THREE_TYPES))
    out = output_of(described)

    assert stack.leftovers() == {"models": [], "endpoint_configs": [], "endpoints": []}
    assert out["failed_types"] == []
    assert sorted(out["tested_types"]) == sorted(THREE_TYPES)
    assert out["recommended"]["instance_type"] in THREE_TYPES
    assert out["recommended"]["monthly_cost_usd_at_min"] > 0
    run_id = out["run_id"]
    keys = stack.keys(f"runs/{run_id}/")
    for kind in THREE_TYPES:
        assert f"runs/{run_id}/{kind}/summary.json" in keys
        assert f"runs/{run_id}/{kind}/step_001_stats.csv" in keys
    for name in ("input.json", "recommendation.json", "report.html", "payloads/0"):
        assert f"runs/{run_id}/{name}" in keys
    assert out["report_uri"] == f"s3://{stack.bucket}/runs/{run_id}/report.html"
    assert len(stack.scenario.loadgen_runs) == 3
