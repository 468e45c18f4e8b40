"""The JSON that passes between the states of ``statemachine/rightsize.asl.json``.

The state machine's paths (``$.item.names.endpoint``, ``$.run.concurrency`` ...) name these
fields: rename one here and the ASL must follow (tests/aws execute the real ASL, so they notice).
Events are parsed leniently (``extra="ignore"``): Step Functions adds fields of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rightsizer.schema import Payload


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
    payloads: list[Payload] = Field(
        default_factory=list,
        description="The sample payloads (copies in the run's folder), for the smoke test.",
    )
    notes: list[str] = Field(default_factory=list)


class ItemNames(_Event):
    model: str
    endpoint_config: str
    endpoint: str


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
    production_variant: dict[str, Any] = Field(
        description="CreateEndpointConfig's one ProductionVariant, optional settings included."
    )
    tags: list[dict[str, str]]
    poll: Poll
    loadgen: LoadgenTask


class ValidateOutput(_Event):
    run: RunContext
    model: dict[str, Any] = Field(
        description="CreateModel's PrimaryContainer and EnableNetworkIsolation, shared by every "
        "item (once here, not once per item: the state stays small); empty for an existing model."
    )
    preflight: LoadgenTask = Field(description="The load generator's check before any endpoint.")
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
    """One Map iteration's whole outcome, as ``aws.outcomes`` rebuilds it from outcome.json."""

    instance_type: str
    instance_count: int = 1
    outcome: Outcome
    created: dict[str, Any] = Field(default_factory=dict)
    cleanup: dict[str, StepError] = Field(
        default_factory=dict, description="Deletions that failed, by resource kind."
    )


class ItemRecord(_Event):
    """One Map iteration's output: fields of bounded size only, so that the Map's collected
    result stays far below Step Functions' 256 KiB state limit for any accepted input. The
    whole outcome is in ``runs/<run_id>/<outcome_key>`` (the iteration's state as JSON)."""

    instance_type: str
    instance_count: int = 1
    status: Literal["succeeded", "failed"]
    outcome_key: str | None = None
    record_error: str | None = Field(None, description="Why outcome.json was not written.")


class IterationState(_Event):
    """What an iteration writes to outcome.json: its whole state (``States.JsonToString($)``)."""

    item: MapItem
    outcome: Outcome
    created: dict[str, Any] = Field(default_factory=dict)
    cleanup: dict[str, StepError] = Field(default_factory=dict)


class FinishEvent(_Event):
    run: RunContext
    prices: dict[str, float]
    outcomes: list[ItemRecord]


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
