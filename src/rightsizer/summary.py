"""What the load engine writes for one instance type: ``summary.json``.

Field names of ``StepResult`` and the top-level ``max_sustainable_rps``/``bottleneck``/``steps``
are a public contract (other tools read them): do not rename.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Bottleneck = Literal["endpoint", "load-generator", "rate-limit"]
# A reason is the endpoint's or the service's own text: enough to act on, small enough for the
# state machine's 256 KiB (every type's outcome passes through one Map result).
MAX_REASON_CHARS = 2000


class TokenStats(BaseModel):
    """A step's generated-token figures, from the requests that succeeded in its window.

    Time to first token (TTFT) is measured only on streamed responses. Inter-token latency
    (ITL) is LLMPerf's: (latency - TTFT) / (output tokens - 1) per request, whatever the
    container's chunking. Per-request tokens/s is output tokens / whole latency.
    """

    model_config = ConfigDict(extra="forbid")

    streamed: bool = Field(description="The responses were streamed (TTFT and ITL measured).")
    counted: Literal["reported", "approximate", "mixed"] = Field(
        description="'reported': from the container's own figures (TGI/LMI details, one event "
        "per token); 'approximate': 4 characters of text per token."
    )
    output_tokens: int = Field(description="Output tokens of the successful requests.")
    output_tokens_per_second: float = Field(
        description="Output tokens of requests completed in the window, per second."
    )
    tokens_per_request_p50: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p90_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p90_ms: float | None = None
    itl_p99_ms: float | None = None
    request_tokens_per_second_p10: float | None = None
    request_tokens_per_second_p50: float | None = None
    ttft_objective_ms: float | None = Field(
        None, description="The objective's TTFT percentile measured in this step."
    )
    tokens_per_second_objective: float | None = Field(
        None, description="The objective's percentile of per-request tokens/s in this step."
    )


class StepResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_rps: float
    achieved_rps: float = Field(description="Successful responses per second in the window.")
    offered_rps: float = Field(description="Requests actually sent per second in the window.")
    requests: int
    failures: int
    failure_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    latency_objective_ms: float | None = Field(
        None, description="The objective's percentile latency measured in this step."
    )
    passed: bool
    reasons: list[str] = Field(default_factory=list, description="Why the step failed.")
    generator_cpu: float = Field(0.0, description="Busiest load-generator process, 1.0 = a core.")
    duration_seconds: float = 0.0
    tokens: TokenStats | None = Field(None, description="Only for responses that carry text.")


class TypeSummary(BaseModel):
    """Outcome for one instance type. ``status`` 'failed' means no usable measurement."""

    model_config = ConfigDict(extra="forbid")

    instance_type: str
    instance_count: int = 1
    status: Literal["succeeded", "failed"]
    reason: str | None = Field(None, description="Why it failed, with the endpoint's own text.")
    failed_stage: str | None = Field(None, description="deploy, smoke_test, load_test, ...")
    method: Literal["search", "legacy"] = "search"
    max_sustainable_rps: float = 0.0
    bottleneck: Bottleneck | None = None
    steps: list[StepResult] = Field(default_factory=list)
    p50_ms: float | None = Field(None, description="At the highest passing step.")
    p95_ms: float | None = None
    p99_ms: float | None = None
    tokens: TokenStats | None = Field(None, description="At the highest passing step.")
    load_seconds: float = 0.0
    started_at: str | None = None
    finished_at: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def capacity_per_instance(self) -> float:
        return self.max_sustainable_rps / self.instance_count


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def failed_summary(
    instance_type: str,
    instance_count: int,
    stage: str,
    reason: str,
    **fields: object,
) -> TypeSummary:
    """A type that produced no usable measurement: where it failed and why, finished now.

    ``fields``: any other ``TypeSummary`` field (``method``, ``started_at``, ``steps`` kept from
    before the failure).
    """
    return TypeSummary.model_validate(
        {
            "finished_at": now_iso(),
            **fields,
            "instance_type": instance_type,
            "instance_count": instance_count,
            "status": "failed",
            "failed_stage": stage,
            "reason": reason[:MAX_REASON_CHARS],
        }
    )
