"""Lambda: the real handlers under ``functions/``, run in-process.

moto 5.2.5's "simple" Lambda backend (``use_docker: False``) does not run code: ``invoke``
echoes the payload. AWS runs the handler and, when it raises, answers 200 with the header
``X-Amz-Function-Error`` and a body ``{"errorType", "errorMessage", "stackTrace"}``, which Step
Functions turns into an error named ``errorType``. ``install`` replaces ``invoke`` with exactly
that, so the ASL's Retry/Catch on Lambda errors behave as on AWS.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from .constants import ACCOUNT, FUNCTION_DIRS, FUNCTIONS, REGION, ROOT
from .scenario import Scenario


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """A fresh invocation has all of the function's Timeout (template.yaml) left."""
        return _timeouts()[self.function_name] * 1000


@functools.cache
def _timeouts() -> dict[str, int]:
    """Each function's Timeout in template.yaml (Globals' when it sets none), by its folder."""
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    default = template["Globals"]["Function"]["Timeout"]
    return {
        resource["Properties"]["CodeUri"].strip("/").split("/")[-1]:
            int(resource["Properties"].get("Timeout", default))
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }


_HANDLERS: dict[str, Callable[..., Any]] = {}


def load_handler(directory: str) -> Callable[..., Any]:
    """``functions/<directory>/app.py``'s handler, imported under a unique module name."""
    if directory not in _HANDLERS:
        path = FUNCTIONS / directory / "app.py"
        spec = importlib.util.spec_from_file_location(f"rightsizer_function_{directory}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _HANDLERS[directory] = module.handler
    return _HANDLERS[directory]


def call_handler(directory: str, event: dict[str, Any]) -> Any:
    """Call a handler as Lambda would: JSON in, JSON out."""
    handler = load_handler(directory)
    result = handler(json.loads(json.dumps(event)), FakeLambdaContext(directory))
    return json.loads(json.dumps(result))


def install(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self: Any, function_name: str, qualifier: Any, body: str | None, headers: Any,
               response_headers: dict[str, str]) -> bytes:
        name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
        event = json.loads(body) if body else {}
        try:
            result = call_handler(FUNCTION_DIRS[name], event)
            if FUNCTION_DIRS[name] == "validate" and scenario.after_validate is not None:
                result = scenario.after_validate(result)
        except Exception as exc:  # reported as Lambda reports an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc),
                               "stackTrace": []}).encode()
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
