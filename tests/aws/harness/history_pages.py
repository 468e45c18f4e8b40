"""GetExecutionHistory in pages, as AWS answers it.

moto 5.2.5 returns every event in one answer and ignores ``maxResults`` and ``nextToken``. AWS
returns at most ``maxResults`` events (default 100, at most 1000) and a ``nextToken`` for the
rest, so a reader that makes one call misses events. ``install`` pages moto's answer the same way.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

DEFAULT_PAGE = 100
LARGEST_PAGE = 1000


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(self: Any) -> Any:
        history = self.stepfunction_backend.get_execution_history(
            self._get_param("executionArn"))
        events = list(history["events"])
        if self._get_param("reverseOrder"):
            events.reverse()
        size = min(int(self._get_param("maxResults") or DEFAULT_PAGE), LARGEST_PAGE)
        start = int(json.loads(self._get_param("nextToken") or "0"))
        page: dict[str, Any] = {"events": events[start:start + size]}
        if start + size < len(events):
            page["nextToken"] = json.dumps(start + size)
        return ActionResult(page)

    monkeypatch.setattr(StepFunctionResponse, "get_execution_history", get_execution_history)
