"""Load a user's inference script and answer one invocation, independent of any HTTP server.

The handler functions follow SageMaker's framework containers: ``model_fn(model_dir)``,
``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction,
accept)``, or a single ``transform_fn(model, body, content_type, accept)``. Every one is
optional. Content types reach user code as the bare media type (``image/png``, no
parameters); a missing Content-Type means JSON and a missing or ``*/*`` Accept means JSON, as in
the toolkits.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from rightsizer.serving import defaults

log = logging.getLogger("rightsizer.serving")
# Full tracebacks for the first few errors per process; one line each after that, so a load
# test against a failing model does not flood the log.
_TRACEBACKS_LOGGED = 10


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str


def load_script(script: Path) -> ModuleType:
    """Import the user's script; its folder goes first on sys.path for its own helpers."""
    if not script.is_file():
        raise FileNotFoundError(f"{script} does not exist: the model needs an inference script")
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    return module


def media_type(header: str | None, default: str) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``; first of a list."""
    first = (header or "").split(",")[0].split(";")[0].strip().lower()
    return default if first in ("", defaults.ANY) else first


class Handler:
    """The user's model, loaded once, and the functions that serve it."""

    def __init__(self, model_dir: str | Path, script: str | Path | None = None) -> None:
        """``script``: the user's script (default ``model_dir/inference.py``)."""
        model_dir = Path(model_dir).resolve()
        # What SageMaker containers expose; user code often reads it.
        os.environ.setdefault("SM_MODEL_DIR", str(model_dir))
        module = load_script(Path(script) if script else model_dir / "inference.py")
        self.input_fn: Callable[[bytes, str], Any] = getattr(
            module, "input_fn", defaults.default_input_fn)
        self.predict_fn: Callable[[Any, Any], Any] = getattr(
            module, "predict_fn", defaults.default_predict_fn)
        self.output_fn: Callable[[Any, str], Any] = getattr(
            module, "output_fn", defaults.default_output_fn)
        self.transform_fn: Callable[[Any, bytes, str, str], Any] | None = getattr(
            module, "transform_fn", None)
        model_fn: Callable[[str], Any] = getattr(module, "model_fn", defaults.default_model_fn)
        self.model = model_fn(str(model_dir))
        self._errors = 0

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Response:
        ctype = media_type(content_type, defaults.JSON)
        acc = media_type(accept, defaults.JSON)
        try:
            if self.transform_fn is not None:
                result = self.transform_fn(self.model, body, ctype, acc)
            else:
                data = self.input_fn(body, ctype)
                prediction = self.predict_fn(data, self.model)
                result = self.output_fn(prediction, acc)
            return _response(result, acc)
        except Exception as exc:
            return self._error(exc)

    def _error(self, exc: Exception) -> Response:
        status = getattr(exc, "status_code", None)
        if not (isinstance(status, int) and 400 <= status <= 599):
            status = 500
        text = f"{type(exc).__name__}: {exc}"
        self._errors += 1
        if status < 500:  # the client's mistake: no traceback
            log.warning("invocation refused (%d): %s", status, text)
        elif self._errors <= _TRACEBACKS_LOGGED:
            log.error("invocation failed (%d)\n%s", status, traceback.format_exc().rstrip())
        else:
            log.error("invocation failed (%d): %s", status, text)
        body = json.dumps({"error": text, "status": status}).encode()
        return Response(status, body, defaults.JSON)


def _response(result: Any, accept: str) -> Response:
    """What output_fn returned: bytes or str (of type ``accept``), or ``(body, content_type)``."""
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, str):
        result = result.encode()
    if not isinstance(result, bytes | bytearray | memoryview):
        raise TypeError(
            f"output_fn returned {type(result).__name__}; return bytes, str or "
            "(body, content_type)"
        )
    return Response(200, bytes(result), content_type)
