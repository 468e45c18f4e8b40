"""Retry waits: recorded, not slept.

moto 5.2.5's Retry sleeps for real (``time.sleep`` in ``retrier_decl``), which would make the
ASL's backoffs (5 s doubling five times) take minutes. AWS waits too; the test only needs the
intervals the ASL asked for, so they are appended to ``Scenario.retry_waits`` instead.
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
