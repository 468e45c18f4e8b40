"""The JSON that passes between the states of ``statemachine/rightsize.asl.json``.

The state machine's paths (``$.item.names.endpoint``, ``$.run.concurrency`` ...) name these
fields: rename one here and the ASL must follow (tests/aws execute the real ASL, so they notice).
Events are parsed leniently (``extra="ignore"``): Step Functions adds fields of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ExecutionContext(_Event):
    name: str
    arn: str
    start_time: str | None = None


class ValidateEvent(_Event):
    """``{"input": <the execution's input, unchecked>, "execution": {...from $$.Execution}}``."""

    input: Any = None
    execution: ExecutionContext


class RunContext(_Event):
    run_id: str
    bucket: str
    results_uri: str = Field(description="s3://bucket: the root holding runs/<run_id>/.")
    run_uri: str = Field(description="s3://bucket/runs/<run_id>/")
    region: str
    execution_arn: str
    execution_name: str
    name_prefix: str
    concurrency: int
    worst_case_cost_usd: float | None = None
    notes: list[str] = Field(default_factory=list)


class ItemNames(_Event):
    model: str
    endpoint_config: str
    endpoint: str


class PayloadRef(_Event):
    uri: str
    content_type: str
    accept: str | None = None


class Poll(_Event):
    seconds: int
    max: int


class LoadgenTask(_Event):
    environment: list[dict[str, str]] = Field(description="ECS ContainerOverrides Environment.")
    timeout_seconds: int


class MapItem(_Event):
    """One instance type: everything its iteration of the Map needs."""

    instance_type: str
    instance_count: int
    names: ItemNames
    create_model: bool
    model_name: str = Field(description="The model the endpoint config uses (created or existing).")
    model: dict[str, Any] = Field(
        default_factory=dict, description="CreateModel's PrimaryContainer/EnableNetworkIsolation."
    )
    tags: list[dict[str, str]]
    poll: Poll
    smoke_payload: PayloadRef
    loadgen: LoadgenTask
    summary_key: str


class ValidateOutput(_Event):
    run: RunContext
    items: list[MapItem]
    prices: dict[str, float]


class SmokeTestEvent(_Event):
    item: MapItem
    run: RunContext


class StepError(_Event):
    """What a Catch puts at ResultPath: ``{"Error": ..., "Cause": ...}``."""

    Error: str = ""
    Cause: str | None = None


class Outcome(_Event):
    status: Literal["succeeded", "failed"]
    stage: str | None = None
    error: StepError | None = None
    endpoint: dict[str, Any] | None = Field(None, description="DescribeEndpoint's last answer.")
    polls: int | None = None
    task_arn: str | None = None


class ItemResult(_Event):
    """One Map iteration's output."""

    instance_type: str
    instance_count: int = 1
    outcome: Outcome
    created: dict[str, Any] = Field(default_factory=dict)
    cleanup: dict[str, StepError] = Field(
        default_factory=dict, description="Deletions that failed, by resource kind."
    )


class FinishEvent(_Event):
    run: RunContext
    prices: dict[str, float]
    outcomes: list[ItemResult]


class JanitorEvent(_Event):
    """An EventBridge "Step Functions Execution Status Change" event, ``{"sweep": true}`` from
    the schedule, or ``{"execution_arn": ...}`` when invoked by hand."""

    detail: dict[str, Any] | None = None
    execution_arn: str | None = None
    sweep: bool = False

    @property
    def target(self) -> str | None:
        """The execution to clean up after; None for a sweep of every finished execution."""
        if self.sweep:
            return None
        arn = self.execution_arn or (self.detail or {}).get("executionArn")
        if not arn:
            raise ValueError("no execution ARN in the event: give execution_arn or sweep: true")
        return str(arn)
