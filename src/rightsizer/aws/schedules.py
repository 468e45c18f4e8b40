"""``rightsizer schedule add | list | remove``: EventBridge Scheduler schedules for a stack.

Each schedule starts the stack's state machine with its own input, checked as ``rightsizer start``
checks it (schema, payload files uploaded) before the schedule exists. Schedules live in the
default group, named ``<stack>-<name>`` (Scheduler allows 64 characters of ``[0-9a-zA-Z-_.]``),
so ``list`` and ``remove`` find a stack's by name prefix. Scheduler assumes the stack's
``SchedulerRole`` (output ``SchedulerRoleArn``), which may only start that state machine.

An input larger than ``INLINE_INPUT_BYTES`` is kept in the bucket,
``s3://<bucket>/schedules/<schedule>/input.json``, and the schedule's input is only the reference
``{"input_uri": ...}``; ``input_reference.resolve`` is how Validate reads it back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from rightsizer.aws.errors import describe_error, error_code
from rightsizer.aws.input_reference import REFERENCE_KEY, referenced_uri
from rightsizer.aws.start import Stack, StartError, find_stack, read_input, upload_payloads
from rightsizer.s3 import split_s3_uri

MAX_SCHEDULE_NAME = 64
SCHEDULE_NAME = re.compile(r"^[0-9a-zA-Z_.-]{1,64}$")
EXPRESSION = re.compile(
    r"^(rate\(1 (minute|hour|day)\)|rate\(([2-9]|[1-9]\d+) (minutes|hours|days)\)|cron\(.+\)"
    r"|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\))$"
)
# Step Functions takes 256 KiB of execution input; past a few KiB the input is kept in the bucket,
# so that neither Scheduler's target nor the execution's history carries it.
INLINE_INPUT_BYTES = 8 * 1024


class ScheduleError(RuntimeError):
    """The schedule cannot be made, listed or removed; the message says what to fix."""


@dataclass(frozen=True)
class ScheduleTarget:
    stack: Stack
    role_arn: str


@dataclass(frozen=True)
class Schedule:
    name: str
    state: str
    expression: str
    input_uri: str | None  # where a large input is kept; None when it is inline


def find_target(stack_name: str, cfn: Any) -> ScheduleTarget:
    """The stack's state machine, bucket and Scheduler role (its outputs)."""
    try:
        stack = find_stack(stack_name, cfn)
    except StartError as exc:
        raise ScheduleError(str(exc)) from None
    described = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if "SchedulerRoleArn" not in outputs:
        raise ScheduleError(f"stack {stack_name!r} has no SchedulerRoleArn output: deploy this "
                            "version of template.yaml (sam deploy)")
    return ScheduleTarget(stack, outputs["SchedulerRoleArn"])


def schedule_name(stack_name: str, name: str) -> str:
    full = f"{stack_name}-{name}"
    if not SCHEDULE_NAME.match(full):
        raise ScheduleError(
            f"schedule name {full!r}: EventBridge Scheduler allows at most {MAX_SCHEDULE_NAME} "
            "letters, digits, '-', '_' and '.'; pass a shorter --name"
        )
    return full


def add_schedule(
    input_path: str | Path, target: ScheduleTarget, expression: str, *, scheduler: Any, s3: Any,
    name: str | None = None,
) -> Schedule:
    """Check the input, upload its payloads, keep it in the bucket if large; create the schedule."""
    if not EXPRESSION.match(expression):
        raise ScheduleError(f"--rate {expression!r}: use rate(7 days), rate(1 day), "
                            "cron(0 3 ? * MON *) or at(2027-01-01T03:00:00)")
    path = Path(input_path)
    try:
        raw, bench = read_input(path)
        upload_payloads(path, bench, target.stack, s3)
    except StartError as exc:
        raise ScheduleError(str(exc)) from None
    full = schedule_name(target.stack.name, name or bench.name)
    document, input_uri = _schedule_input(raw, full, target.stack.bucket, s3)
    try:
        scheduler.create_schedule(
            Name=full, ScheduleExpression=expression, State="ENABLED",
            FlexibleTimeWindow={"Mode": "OFF"},
            Description=f"rightsizer: re-benchmark {bench.name} on {target.stack.name}",
            Target={"Arn": target.stack.state_machine_arn, "RoleArn": target.role_arn,
                    "Input": document, "RetryPolicy": {"MaximumRetryAttempts": 3}},
        )
    except ClientError as exc:
        if error_code(exc) == "ConflictException":
            raise ScheduleError(f"schedule {full!r} exists: remove it first, or pass another "
                                "--name") from None
        raise ScheduleError(f"cannot create schedule {full!r}: {describe_error(exc)}") from None
    return Schedule(full, "ENABLED", expression, input_uri)


def _schedule_input(raw: Any, full_name: str, bucket: str, s3: Any) -> tuple[str, str | None]:
    document = json.dumps(raw)
    if len(document.encode()) <= INLINE_INPUT_BYTES:
        return document, None
    key = f"schedules/{full_name}/input.json"
    s3.put_object(Bucket=bucket, Key=key, Body=document.encode(), ContentType="application/json")
    uri = f"s3://{bucket}/{key}"
    return json.dumps({REFERENCE_KEY: uri}), uri


def list_schedules(stack_name: str, *, scheduler: Any) -> list[Schedule]:
    """The stack's schedules, every page of ListSchedules (100 at most per page)."""
    found: list[Schedule] = []
    for page in scheduler.get_paginator("list_schedules").paginate(NamePrefix=f"{stack_name}-"):
        for summary in page.get("Schedules", []):
            detail = scheduler.get_schedule(Name=summary["Name"])
            found.append(Schedule(summary["Name"], detail.get("State", ""),
                                  detail.get("ScheduleExpression", ""),
                                  referenced_uri(detail["Target"].get("Input", ""))))
    return sorted(found, key=lambda s: s.name)


def remove_schedule(stack_name: str, name: str, *, scheduler: Any, s3: Any) -> Schedule:
    """Delete one of the stack's schedules (``name`` with or without the stack's prefix)."""
    full = name if name.startswith(f"{stack_name}-") else schedule_name(stack_name, name)
    matching = [s for s in list_schedules(stack_name, scheduler=scheduler) if s.name == full]
    if not matching:
        raise ScheduleError(f"no schedule {full!r}: `rightsizer schedule list --stack "
                            f"{stack_name}` shows the stack's schedules")
    scheduler.delete_schedule(Name=full)
    if matching[0].input_uri:
        bucket, key = split_s3_uri(matching[0].input_uri)
        s3.delete_object(Bucket=bucket, Key=key)
    return matching[0]
