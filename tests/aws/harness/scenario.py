"""What each instance type does in a test, and what the fakes record while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _names_type(resource: str, instance_type: str) -> bool:
    """Whether a SageMaker resource name belongs to ``instance_type`` (names hold its slug)."""
    from rightsizer.aws.naming import slug

    return f"-{slug(instance_type.removeprefix('ml.'))}-" in resource


@dataclass
class Fault:
    """A SageMaker API error injected into moto's backend.

    ``operation`` is the backend method (``create_model``, ``create_endpoint``,
    ``delete_endpoint``...); the fault fires for the resources of ``instance_type``, on the first
    ``times`` calls (every call when None), with HTTP ``status`` (SageMaker answers 400 for
    client errors and throttling, 500 for ``InternalFailure``).
    """

    operation: str
    instance_type: str
    code: str
    message: str
    times: int | None = None
    status: int = 400
    calls: int = 0

    def fires(self, operation: str, resource: str) -> bool:
        if operation != self.operation or not _names_type(resource, self.instance_type):
            return False
        self.calls += 1
        return self.times is None or self.calls <= self.times


@dataclass
class CapacityFailure:
    """RunTask answers with a ``failures`` entry instead of a task, ``attempts`` times (every
    time when None): how ECS reports no Fargate capacity or a vCPU quota (HTTP 200, no error)."""

    reason: str = ("Capacity is unavailable at this time. Please try again later or in a "
                   "different availability zone")
    attempts: int | None = None
    calls: int = 0

    def fires(self) -> bool:
        self.calls += 1
        return self.attempts is None or self.calls <= self.attempts


@dataclass
class Scenario:
    """What each instance type does in a test. Types not listed succeed with 10 rps."""

    capacity_rps: dict[str, float] = field(default_factory=dict)
    endpoint_fails: dict[str, str] = field(default_factory=dict)  # type -> FailureReason
    creating_polls: dict[str, int] = field(default_factory=dict)  # type -> polls before InService
    # type -> bytes of padding in DescribeEndpoint's answer (to pass a state size limit)
    describe_padding: dict[str, int] = field(default_factory=dict)
    model_error: dict[str, tuple[int, str]] = field(default_factory=dict)  # type -> (status, msg)
    loadgen_crash: dict[str, str] = field(default_factory=dict)  # type -> exception message
    # When set, the fake task "runs" until release() or 30 s: lets a test abort mid-Map.
    hold_load: threading.Event | None = None
    hold_only: set[str] | None = None  # hold these types' tasks only (None: every type)
    abandon_held: bool = False  # a held task that is released does not run (timed-out tests)
    loadgen_s3_denied: set[str] = field(default_factory=set)  # the task role cannot write
    faults: list[Fault] = field(default_factory=list)
    smoke_answer: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (body, type)
    smoke_timeout: set[str] = field(default_factory=set)  # types whose smoke test times out
    run_task_error: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (code, msg)
    run_task_failures: dict[str, CapacityFailure] = field(default_factory=dict)  # type -> failure
    preflight_fails: dict[str, str] = field(default_factory=dict)  # check name -> its detail
    s3_denied: list[str] = field(default_factory=list)  # PutObject denied for keys containing
    # Applied to the validate Lambda's result: lets a test break the plan the Map receives.
    after_validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Filled in by the harness:
    loadgen_runs: list[dict[str, str]] = field(default_factory=list)  # load tests' environments
    preflight_runs: list[dict[str, str]] = field(default_factory=list)  # preflight tasks' too
    exit_codes: dict[str, int] = field(default_factory=dict)  # task ARN -> exit code
    smoke_calls: list[str] = field(default_factory=list)
    smoke_bodies: list[bytes] = field(default_factory=list)
    describe_calls: dict[str, int] = field(default_factory=dict)
    retry_waits: list[float] = field(default_factory=list)  # Retry intervals the ASL asked for
