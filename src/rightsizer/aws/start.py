"""Start a benchmark on a deployed stack, follow it, fetch its report (``rightsizer start``).

``start_run`` checks the input with the schema and the execution name first (a typo costs
nothing), uploads payload
files that the input names by relative path to the stack's bucket (``payloads/x.jpg`` next to the
input file becomes ``s3://<bucket>/payloads/x.jpg``, as the state machine reads it), and starts an
execution. ``follow`` polls until the execution ends; ``download_report`` copies report.html.
The CLI's ``start`` command is a thin layer over these.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError
from pydantic import ValidationError

from rightsizer.aws.errors import describe_error, error_code, error_message
from rightsizer.aws.validate import EXECUTION_NAME
from rightsizer.schema import S3_URI, BenchmarkInput, format_errors

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
HISTORY_PAGE = 1000  # the most GetExecutionHistory returns at once; a history holds up to 25,000
MAX_INPUT_BYTES = 256 * 1024  # Step Functions' limit on an execution's input
# A stack in one of these never finished a deployment: its outputs are missing or stale.
UNDEPLOYED = {"CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED",
              "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE",
              "REVIEW_IN_PROGRESS"}


class StartError(RuntimeError):
    """The run cannot start; the message says what to fix."""


@dataclass(frozen=True)
class Stack:
    name: str
    state_machine_arn: str
    bucket: str


def find_stack(stack_name: str, cfn: Any) -> Stack:
    region = cfn.meta.region_name
    try:
        described = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        # CloudFormation answers ValidationError for a missing stack and for a malformed name
        # alike; only the message ("Stack with id X does not exist") tells them apart.
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            raise StartError(
                f"stack {stack_name!r} not found in {region}: deploy it (sam deploy) or pass "
                "the --region it is in"
            ) from None
        raise StartError(f"cannot describe stack {stack_name!r} in {region}: {describe_error(exc)}"
                         ) from None
    status = described.get("StackStatus", "")
    if status in UNDEPLOYED:
        raise StartError(
            f"stack {stack_name!r} is {status}: it never finished deploying; wait for it, or "
            "delete it and deploy again (sam deploy)"
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = {"StateMachineArn", "ResultsBucketName"} - set(outputs)
    if missing:
        raise StartError(
            f"stack {stack_name!r} has no {', '.join(sorted(missing))} output: is it a "
            "rightsizer stack (template.yaml)?"
        )
    return Stack(stack_name, outputs["StateMachineArn"], outputs["ResultsBucketName"])


def start_run(
    input_path: str | Path,
    stack: Stack,
    *,
    sfn: Any,
    s3: Any,
    execution_name: str | None = None,
    now: datetime | None = None,
) -> str:
    """Check the input, upload its local payload files, start an execution; its ARN."""
    path = Path(input_path)
    raw, bench = read_input(path)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = execution_name or f"{bench.name}-{stamp}"
    if not EXECUTION_NAME.match(name):
        raise StartError(
            f"execution name {name!r}: use 1-80 letters, digits, '-' and '_' (Step Functions "
            "allows more, but SageMaker tags, which find what the run created, do not)"
        )
    document = json.dumps(raw)
    if len(document.encode()) > MAX_INPUT_BYTES:
        raise StartError(
            f"{path} is {len(document.encode()) // 1024} KiB; Step Functions takes at most "
            "256 KiB of input: move large inline payload bodies into files"
        )
    upload_payloads(path, bench, stack, s3)
    try:
        arn: str = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name=name, input=document
        )["executionArn"]
    except ClientError as exc:
        raise StartError(_start_refused(exc, name, stack)) from None
    return arn


def read_input(path: Path) -> tuple[Any, BenchmarkInput]:
    try:
        raw = json.loads(path.read_text())
        return raw, BenchmarkInput.model_validate(raw)
    except OSError as exc:
        raise StartError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise StartError(f"{path} is not JSON: {exc}") from None
    except ValidationError as exc:
        raise StartError(f"{path}:\n{format_errors(exc)}") from None


def upload_payloads(path: Path, bench: BenchmarkInput, stack: Stack, s3: Any) -> None:
    """Upload payload files named by relative path to the same key in the stack's bucket."""
    for index, payload in enumerate(bench.payloads):
        if payload.path is None or S3_URI.match(payload.path):
            continue
        local = path.parent / payload.path
        if not local.is_file():
            raise StartError(
                f"payloads[{index}].path: {local} does not exist; on AWS the path is a key in "
                f"s3://{stack.bucket}/, uploaded from beside the input file"
            )
        key = payload.path.lstrip("/")
        try:
            s3.upload_file(str(local), stack.bucket, key,
                           ExtraArgs={"ContentType": payload.content_type})
        except (S3UploadFailedError, ClientError) as exc:
            raise StartError(
                f"payloads[{index}].path: cannot upload {local} to s3://{stack.bucket}/{key} "
                f"({exc}): check that the stack {stack.name!r} still has its bucket and that "
                "your credentials may s3:PutObject there"
            ) from None


def _start_refused(exc: ClientError, name: str, stack: Stack) -> str:
    """What StartExecution's error means for the user, and what to do about it."""
    code, machine = error_code(exc), stack.state_machine_arn
    if code == "ExecutionAlreadyExists":
        return (f"an execution named {name!r} already exists on {machine} (names stay taken "
                "for 90 days after an execution ends): pass another --name")
    if code == "InvalidName":
        return f"execution name {name!r} refused by Step Functions ({error_message(exc)}): --name"
    if code in {"StateMachineDoesNotExist", "StateMachineDeleting"}:
        return (f"the state machine {machine} of stack {stack.name!r} is gone or being deleted "
                f"({code}): deploy the stack again (sam deploy)")
    if code == "ExecutionLimitExceeded":
        return f"{machine} has too many running executions: wait for some to end"
    if code == "InvalidExecutionInput":
        return f"Step Functions refused the input: {error_message(exc)}"
    if code in {"AccessDeniedException", "AccessDenied"}:
        return (f"not allowed to start {machine}: your credentials need states:StartExecution "
                f"on it ({error_message(exc)})")
    return f"cannot start an execution of {machine}: {describe_error(exc)}"


def follow(
    execution_arn: str,
    *,
    sfn: Any,
    progress: Callable[[str], None] = lambda _m: None,
    poll_seconds: float = 15.0,
    timeout_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the execution ends; report each new state entered. The final description."""
    last_seen = 0
    started = time.monotonic()
    while True:
        for event in _events_after(last_seen, execution_arn, sfn):
            entered = event.get("stateEnteredEventDetails")
            if entered:
                progress(f"{event['timestamp']:%H:%M:%S} {entered['name']}")
            last_seen = event["id"]
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in FINAL:
            return described
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise StartError(f"{execution_arn} still {described['status']}; stopped following")
        sleep(poll_seconds)


def _events_after(last_seen: int, execution_arn: str, sfn: Any) -> list[dict[str, Any]]:
    """The history's events with an id above ``last_seen``, oldest first.

    Pages are read newest first and only until a page reaches ``last_seen``, so each poll of a
    long execution reads what is new, not the whole history again.
    """
    new: list[dict[str, Any]] = []
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, reverseOrder=True, includeExecutionData=False,
        PaginationConfig={"PageSize": HISTORY_PAGE},
    )
    for page in pages:
        events = page.get("events", [])
        new.extend(event for event in events if event["id"] > last_seen)
        if any(event["id"] <= last_seen for event in events):
            break
    return sorted(new, key=lambda event: int(event["id"]))


def download_report(output: dict[str, Any], s3: Any, destination: str | Path) -> Path:
    match = S3_URI.match(output.get("report_uri", ""))
    if not match:
        raise StartError("the execution's output has no report_uri")
    target = Path(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(match["bucket"], match["key"], str(target))
    except ClientError as exc:
        raise StartError(f"cannot download {match[0]}: {describe_error(exc)}") from None
    return target


def main(argv: list[str] | None = None) -> int:
    """``rightsizer start FILE --stack NAME [--wait]``."""
    import argparse
    import sys

    import boto3

    parser = argparse.ArgumentParser(
        prog="rightsizer start",
        description="Start a benchmark on a deployed rightsizer stack (see docs/aws.md).",
    )
    parser.add_argument("input", help="the input JSON file")
    parser.add_argument("--stack", required=True, help="the CloudFormation stack name")
    parser.add_argument("--region", help="the stack's region (default: your AWS config's)")
    parser.add_argument("--name", help="execution name (default: <input name>-<UTC time>)")
    parser.add_argument("--wait", action="store_true", help="follow it and download the report")
    parser.add_argument("--report", help="where to save report.html (default: "
                        "results/runs/<run_id>/report.html)")
    parser.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        session = boto3.Session(region_name=args.region)
        sfn, s3 = session.client("stepfunctions"), session.client("s3")
        stack = find_stack(args.stack, session.client("cloudformation"))
        arn = start_run(args.input, stack, sfn=sfn, s3=s3, execution_name=args.name)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NoRegionError:
        print("error: no AWS region: pass --region or set AWS_REGION", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print("error: no AWS credentials: configure them (aws configure, AWS_PROFILE or "
              "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)", file=sys.stderr)
        return 2
    print(f"started {arn}")
    if not args.wait:
        return 0
    described = follow(arn, sfn=sfn, progress=print, poll_seconds=args.poll_seconds)
    if described["status"] != "SUCCEEDED":
        print(f"{described['status']}: {described.get('error', '')}: {described.get('cause', '')}",
              file=sys.stderr)
        return 1
    output = json.loads(described["output"])
    target = args.report or f"results/runs/{output['run_id']}/report.html"
    try:
        report = download_report(output, s3, target)
    except StartError as exc:
        print(f"error: the run succeeded but {exc}", file=sys.stderr)
        return 1
    best = output.get("recommended")
    if best:
        print(f"recommended: {best['instance_type']} x{best['instance_count_at_min']}"
              f"-{best['instance_count_at_max']}, ${best['monthly_cost_usd_at_min']:,.2f}/month "
              "at min traffic")
    for failed in output.get("failed_types", []):
        print(f"failed: {failed['instance_type']} at {failed['stage']}: {failed['reason']}")
    print(f"report: {report}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
