"""Names the fake stack and its tests share (the deployed template's values, made up)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ASL_PATH = ROOT / "statemachine" / "rightsize.asl.json"
FUNCTIONS = ROOT / "functions"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "rightsizer"
BUCKET = "rightsizer-results-test"
LOADGEN_CONTAINER = "loadgen"
FUNCTION_DIRS = {f"{PREFIX}-validate": "validate", f"{PREFIX}-smoke-test": "smoke_test",
                 f"{PREFIX}-recommend": "recommend", f"{PREFIX}-janitor": "janitor"}
