"""Turn what Step Functions reports about a failed step into one line a person can act on.

A Catch gives ``{"Error": name, "Cause": text}``. The Cause is JSON for Lambda errors
(``{"errorMessage": ...}``) and for ECS tasks (the task description), plain text for SageMaker.
"""

from __future__ import annotations

import json
from typing import Any

from rightsizer.aws.events import Outcome, StepError

MAX_REASON = 2000


def reason_for(outcome: Outcome) -> str:
    """The reason an item failed, with the service's own words, at most ``MAX_REASON`` chars."""
    if outcome.endpoint is not None and outcome.error is None:
        return _endpoint_reason(outcome)[:MAX_REASON]
    if outcome.error is None:
        return "failed without an error description"
    return error_text(outcome.error)[:MAX_REASON]


def _endpoint_reason(outcome: Outcome) -> str:
    endpoint = outcome.endpoint or {}
    status = endpoint.get("EndpointStatus", "unknown")
    name = endpoint.get("EndpointName", "the endpoint")
    if status == "Failed":
        why = endpoint.get("FailureReason") or "no reason given"
        return f"endpoint {name} went to Failed: {why}"
    polls = f" after {outcome.polls} checks" if outcome.polls is not None else ""
    return (
        f"endpoint {name} was still {status}{polls}, past the deploy bound "
        "(DeployTimeoutSeconds): it was deleted; try again or raise the bound"
    )


def error_text(error: StepError) -> str:
    name = error.Error or "Error"
    cause = error.Cause or ""
    parsed = _json(cause)
    if isinstance(parsed, dict):
        if "errorMessage" in parsed:  # a Lambda function raised
            return f"{parsed.get('errorType') or name}: {parsed['errorMessage']}"
        if "Containers" in parsed or "StoppedReason" in parsed or "TaskArn" in parsed:
            return f"{name}: {_task_reason(parsed)}"
    if name == "States.Timeout":
        return f"States.Timeout: the step ran past its bound. {cause}".strip()
    return f"{name}: {cause}" if cause else name


def _task_reason(task: dict[str, Any]) -> str:
    parts = []
    stopped = task.get("StoppedReason") or task.get("stoppedReason")
    if stopped:
        parts.append(f"task stopped: {stopped}")
    for container in task.get("Containers") or task.get("containers") or []:
        code = container.get("ExitCode", container.get("exitCode"))
        why = container.get("Reason") or container.get("reason")
        if code not in (None, 0) or why:
            parts.append(
                f"container {container.get('Name') or container.get('name')} exit code {code}"
                + (f" ({why})" if why else "")
            )
    arn = task.get("TaskArn") or task.get("taskArn")
    if arn:
        parts.append(f"see the task's logs ({arn})")
    return "; ".join(parts) or "the load-generator task failed"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def cleanup_problems(instance_type: str, cleanup: dict[str, StepError]) -> list[str]:
    """Deletions that failed: each may have left a resource behind (the janitor's job)."""
    return [
        f"{instance_type}: deleting the {kind.replace('_', ' ')} failed ({error_text(err)}); "
        "it may still exist and bill: check the SageMaker console"
        for kind, err in sorted(cleanup.items())
    ]
