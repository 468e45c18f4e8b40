"""The janitor: delete what an execution left behind when its own cleanup could not run.

A Catch does not run when an execution is aborted or times out, and an endpoint still
``Creating`` cannot be deleted until SageMaker gives up on it. The janitor closes both gaps:

* on an execution's status change (EventBridge rule: SUCCEEDED, FAILED, TIMED_OUT, ABORTED) it
  deletes every endpoint, endpoint config and model tagged with that execution's ARN;
* on a schedule (``sweep``) it does the same for every execution that is no longer running, so an
  endpoint that could not be deleted yet is deleted on a later pass.

Only resources whose name starts with ``<prefix>-`` **and** whose ``rightsizer:execution-arn``
tag holds ``tag_value(<execution ARN>)`` are touched: a user's own models (``model.kind:
existing``) carry no such tag and are never deleted. Running it twice is harmless: what is gone
is skipped, and an endpoint SageMaker is already deleting is not deleted again.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rightsizer.aws.errors import (
    describe_error,
    error_code,
    error_message,
    sagemaker_busy,
    sagemaker_not_found,
)
from rightsizer.aws.naming import TAG_EXECUTION_ARN, tag_value

log = logging.getLogger(__name__)

LIST_PAGE_SIZE = 100  # the most SageMaker's List* calls return at once (their default is 10)


@dataclass(frozen=True)
class Kind:
    """One kind of SageMaker resource: how to list it and how to delete it."""

    name: str
    lister: str
    items_key: str
    name_key: str
    arn_key: str
    deleter: str


# Deletion order: an endpoint first (it bills), then what it used.
KINDS = (
    Kind("endpoint", "list_endpoints", "Endpoints", "EndpointName", "EndpointArn",
         "delete_endpoint"),
    Kind("endpoint_config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
         "EndpointConfigArn", "delete_endpoint_config"),
    Kind("model", "list_models", "Models", "ModelName", "ModelArn", "delete_model"),
)


class EndpointAction(enum.Enum):
    DELETE = "delete"
    WAIT = "wait"  # SageMaker refuses to delete it in this state; the hourly sweep retries
    ALREADY_DELETING = "already deleting"


# Every EndpointStatus in SageMaker's API model (a test compares this with botocore's enum).
ENDPOINT_STATUS_ACTIONS: dict[str, EndpointAction] = {
    "InService": EndpointAction.DELETE,
    "OutOfService": EndpointAction.DELETE,
    "Failed": EndpointAction.DELETE,
    "UpdateRollbackFailed": EndpointAction.DELETE,
    "Creating": EndpointAction.WAIT,
    "Updating": EndpointAction.WAIT,
    "SystemUpdating": EndpointAction.WAIT,
    "RollingBack": EndpointAction.WAIT,
    "Deleting": EndpointAction.ALREADY_DELETING,
}


@dataclass
class JanitorReport:
    deleted: dict[str, list[str]] = field(default_factory=lambda: {k.name: [] for k in KINDS})
    deleting: list[str] = field(default_factory=list)  # endpoints SageMaker is deleting already
    waiting: list[str] = field(default_factory=list)  # endpoints SageMaker will not delete yet
    kept_running: list[str] = field(default_factory=list)  # belong to running executions
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "deleting": self.deleting, "waiting": self.waiting,
                "kept_running": self.kept_running, "errors": self.errors}


def clean_up(
    prefix: str,
    *,
    sagemaker: Any,
    sfn: Any,
    execution_arn: str | None = None,
    page_size: int = LIST_PAGE_SIZE,
) -> JanitorReport:
    """Delete the resources of ``execution_arn``, or of every finished execution (a sweep)."""
    report = JanitorReport()
    wanted = tag_value(execution_arn) if execution_arn is not None else None
    running: dict[str, bool] = {}

    def still_running(owner: str) -> bool:
        if owner not in running:
            running[owner] = _is_running(owner, sfn)
        return running[owner]

    for kind in KINDS:
        for resource in _list_under_prefix(sagemaker, kind, prefix, page_size):
            name = resource[kind.name_key]
            owner = _owner(sagemaker, resource[kind.arn_key], name, report)
            if owner is None:
                continue  # not ours (or unreadable, reported): never touched
            if wanted is not None and owner != wanted:
                continue
            if wanted is None and still_running(owner):
                report.kept_running.append(name)
                continue
            _delete(sagemaker, kind, name, resource, report)
    return report


def _list_under_prefix(
    sagemaker: Any, kind: Kind, prefix: str, page_size: int
) -> Iterator[dict[str, Any]]:
    """Every resource of ``kind`` named exactly ``<prefix>-...``, over all pages.

    ``NameContains`` only narrows what SageMaker sends (it matches anywhere in the name), so the
    start of each name is checked here.
    """
    pages = sagemaker.get_paginator(kind.lister).paginate(
        NameContains=prefix, PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        for resource in page.get(kind.items_key, []):
            if resource[kind.name_key].startswith(f"{prefix}-"):
                yield resource


def _owner(sagemaker: Any, arn: str, name: str, report: JanitorReport) -> str | None:
    """The (sanitised) execution ARN tag of a resource; None if it has none or is gone."""
    try:
        for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
            for tag in page.get("Tags", []):
                if tag["Key"] == TAG_EXECUTION_ARN:
                    return tag_value(tag["Value"])
    except ClientError as exc:
        if not sagemaker_not_found(exc):  # e.g. throttled or denied: it may be ours, so say so
            report.errors.append(f"tags of {name}: {describe_error(exc)}")
        return None
    return None


def _is_running(owner: str, sfn: Any) -> bool:
    """Whether the execution a tag names still runs.

    The tag is ``tag_value(ARN)``, which is the ARN itself for every execution that creates
    resources: Validate refuses execution names that ``tag_value`` would change.
    """
    try:
        return bool(sfn.describe_execution(executionArn=owner)["status"] == "RUNNING")
    except ClientError as exc:
        if error_code(exc) == "ExecutionDoesNotExist":
            return False  # history expired (90 days) or deleted with its state machine
        log.warning("cannot tell whether %s runs (%s): keeping its resources", owner,
                    describe_error(exc))
        return True


def _delete(
    sagemaker: Any, kind: Kind, name: str, resource: dict[str, Any], report: JanitorReport
) -> None:
    if kind.name == "endpoint" and not _endpoint_deletable(name, resource, report):
        return
    try:
        getattr(sagemaker, kind.deleter)(**{kind.name_key: name})
    except ClientError as exc:
        if sagemaker_not_found(exc):
            return  # deleted meanwhile: idempotent
        if kind.name == "endpoint" and sagemaker_busy(exc):
            report.waiting.append(f"{name} ({error_message(exc)})")
            return
        report.errors.append(f"{kind.name} {name}: {describe_error(exc)}")
        return
    report.deleted[kind.name].append(name)


def _endpoint_deletable(name: str, resource: dict[str, Any], report: JanitorReport) -> bool:
    """Decide on the listed EndpointStatus; record why an endpoint is left for now."""
    status = str(resource.get("EndpointStatus", ""))
    action = ENDPOINT_STATUS_ACTIONS.get(status)
    if action is None:
        # A status newer than this code: let SageMaker decide (it refuses what it cannot do).
        log.warning("endpoint %s has unknown status %r: trying to delete it", name, status)
        return True
    if action is EndpointAction.ALREADY_DELETING:
        report.deleting.append(name)
    elif action is EndpointAction.WAIT:
        report.waiting.append(f"{name} ({status})")
    return action is EndpointAction.DELETE


