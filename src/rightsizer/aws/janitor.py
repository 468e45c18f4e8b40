"""The janitor: delete what an execution left behind when its own cleanup could not run.

A Catch does not run when an execution is aborted or times out, and an endpoint still
``Creating`` cannot be deleted until SageMaker gives up on it. The janitor closes both gaps:

* on an execution's status change (EventBridge rule: SUCCEEDED, FAILED, TIMED_OUT, ABORTED) it
  deletes every endpoint, endpoint config and model tagged with that execution's ARN;
* on a schedule (``sweep``) it does the same for every execution that is no longer running, so an
  endpoint that could not be deleted yet is deleted on a later pass.

Only resources named ``<prefix>-...`` **and** tagged ``rightsizer:execution-arn`` are touched: a
user's own models (``model.kind: existing``) carry no such tag and are never deleted. Running it
twice is harmless: what is gone is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from rightsizer.aws.naming import TAG_EXECUTION_ARN

log = logging.getLogger(__name__)

# Deletion order: an endpoint first (it bills), then what it used.
KINDS = (
    ("endpoint", "list_endpoints", "Endpoints", "EndpointName", "EndpointArn"),
    ("endpoint_config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
     "EndpointConfigArn"),
    ("model", "list_models", "Models", "ModelName", "ModelArn"),
)
NOT_DELETABLE_YET = {"Creating", "Updating", "SystemUpdating", "RollingBack"}


@dataclass
class JanitorReport:
    deleted: dict[str, list[str]] = field(default_factory=lambda: {k[0]: [] for k in KINDS})
    waiting: list[str] = field(default_factory=list)  # endpoints SageMaker will not delete yet
    kept_running: list[str] = field(default_factory=list)  # belong to running executions
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "waiting": self.waiting,
                "kept_running": self.kept_running, "errors": self.errors}


def clean_up(
    prefix: str,
    *,
    sagemaker: Any,
    sfn: Any,
    execution_arn: str | None = None,
) -> JanitorReport:
    """Delete the resources of ``execution_arn``, or of every finished execution (a sweep)."""
    report = JanitorReport()
    running: dict[str, bool] = {}

    def still_running(owner: str) -> bool:
        if owner not in running:
            running[owner] = _is_running(owner, sfn)
        return running[owner]

    for kind, lister, key, name_key, arn_key in KINDS:
        for resource in _list(sagemaker, lister, key, name_key, prefix):
            name, arn = resource[name_key], resource[arn_key]
            owner = _owner(sagemaker, arn)
            if owner is None:
                continue  # not ours: never touched
            if execution_arn is not None and owner != execution_arn:
                continue
            if execution_arn is None and still_running(owner):
                report.kept_running.append(name)
                continue
            _delete(sagemaker, kind, name, resource, report)
    return report


def _list(
    sagemaker: Any, lister: str, key: str, name_key: str, prefix: str
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs = {"NameContains": prefix, "MaxResults": 100}
    while True:
        page = getattr(sagemaker, lister)(**kwargs)
        found.extend(r for r in page.get(key, []) if r[name_key].startswith(prefix + "-"))
        token = page.get("NextToken")
        if not token:
            return found
        kwargs["NextToken"] = token


def _owner(sagemaker: Any, arn: str) -> str | None:
    try:
        tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    except Exception as exc:  # gone meanwhile, or not readable: leave it
        log.info("cannot read tags of %s: %s", arn, exc)
        return None
    return next((t["Value"] for t in tags if t["Key"] == TAG_EXECUTION_ARN), None)


def _is_running(execution_arn: str, sfn: Any) -> bool:
    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code == "ExecutionDoesNotExist":
            return False  # history expired (90 days) or deleted with its state machine
        log.warning("cannot tell whether %s runs (%s): keeping its resources", execution_arn, exc)
        return True


def _delete(
    sagemaker: Any, kind: str, name: str, resource: dict[str, Any], report: JanitorReport
) -> None:
    if kind == "endpoint" and resource.get("EndpointStatus") in NOT_DELETABLE_YET:
        report.waiting.append(f"{name} ({resource['EndpointStatus']})")
        return
    call = {"endpoint": ("delete_endpoint", "EndpointName"),
            "endpoint_config": ("delete_endpoint_config", "EndpointConfigName"),
            "model": ("delete_model", "ModelName")}[kind]
    try:
        getattr(sagemaker, call[0])(**{call[1]: name})
    except Exception as exc:
        message = str(exc)
        if "Could not find" in message or "does not exist" in message:
            return  # deleted meanwhile: idempotent
        if kind == "endpoint" and "Cannot" in message:
            report.waiting.append(f"{name} ({message})")
            return
        report.errors.append(f"{kind} {name}: {message}")
        return
    report.deleted[kind].append(name)
