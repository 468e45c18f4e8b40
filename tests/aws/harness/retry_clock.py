"""Retry waits: recorded, not slept; the ``.sync`` poll: short.

moto 5.2.5's Retry sleeps for real (``time.sleep`` in ``retrier_decl``), which would make the
ASL's backoffs (5 s doubling five times) take minutes. AWS waits too; the test only needs the
intervals the ASL asked for, so they are appended to ``Scenario.retry_waits`` instead.

moto checks a ``.sync`` task (``ecs:runTask.sync``) every 0.5 s until it stops; the fake task has
stopped by the first check after it ran, so a 10 ms poll changes nothing but the wall time.
"""

from __future__ import annotations

import pytest

from .scenario import Scenario


def install(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class RecordingClock:
        @staticmethod
        def sleep(seconds: float) -> None:
            scenario.retry_waits.append(seconds)

    monkeypatch.setattr(retrier_decl, "time", RecordingClock)

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    monkeypatch.setattr(callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.01)
