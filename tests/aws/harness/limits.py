"""Step Functions' 256 KiB limit on a state's input, output and a task's result.

AWS fails a state with ``States.DataLimitExceeded`` when its input, its output or a task's
result is more than 262,144 bytes of UTF-8 JSON. moto 5.2.5 checks outputs and task results
only, and refuses exactly 262,144 bytes (``<`` instead of ``<=``). ``install`` applies AWS's bound
and checks every state's input too (an execution input, a Map item, a state's Next input).
``States.ALL`` does not catch the error on AWS: see ``error_names``.
"""

from __future__ import annotations

from typing import Any

import pytest

MAX_STATE_BYTES = 262_144  # 256 KiB


def size_in_bytes(value: Any) -> int:
    """A value's size as Step Functions measures it: compact UTF-8 JSON (a string as is)."""
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    text = value if isinstance(value, str) else to_json_str(value, separators=(",", ":"))
    return len(text.encode("utf-8"))


def is_within_limit(value: Any) -> bool:
    return size_in_bytes(value) <= MAX_STATE_BYTES


def _install_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state import state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )

    for module in (state, state_task_lambda, state_task_service):
        monkeypatch.setattr(module, "is_within_size_quota", is_within_limit)


def _install_input_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original = CommonStateField._eval_body

    def eval_body(self: Any, env: Any) -> None:
        # moto's own check (the failure it raises names the state, as AWS's does).
        self._verify_size_quota(env=env, value=env.states.get_input())
        original(self, env)

    monkeypatch.setattr(CommonStateField, "_eval_body", eval_body)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_bound(monkeypatch)
    _install_input_check(monkeypatch)
