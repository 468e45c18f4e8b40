"""Start a benchmark on a deployed stack, follow it, fetch its report (``rightsizer start``).

``start_run`` checks the input with the schema first (a typo costs nothing), uploads payload
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

from pydantic import ValidationError

from rightsizer.schema import S3_URI, BenchmarkInput, format_errors

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class StartError(RuntimeError):
    """The run cannot start; the message says what to fix."""


@dataclass(frozen=True)
class Stack:
    name: str
    state_machine_arn: str
    bucket: str


def find_stack(stack_name: str, cfn: Any) -> Stack:
    try:
        described = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception as exc:
        raise StartError(f"stack {stack_name!r} not found in this region: {exc}") from None
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
    try:
        raw = json.loads(path.read_text())
        bench = BenchmarkInput.model_validate(raw)
    except OSError as exc:
        raise StartError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise StartError(f"{path} is not JSON: {exc}") from None
    except ValidationError as exc:
        raise StartError(f"{path}:\n{format_errors(exc)}") from None
    for index, payload in enumerate(bench.payloads):
        if payload.path is None or S3_URI.match(payload.path):
            continue
        local = path.parent / payload.path
        if not local.is_file():
            raise StartError(
                f"payloads[{index}].path: {local} does not exist; on AWS the path is a key in "
                f"s3://{stack.bucket}/, uploaded from beside the input file"
            )
        s3.upload_file(str(local), stack.bucket, payload.path.lstrip("/"),
                       ExtraArgs={"ContentType": payload.content_type})
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = execution_name or f"{bench.name}-{stamp}"
    return sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(raw)
    )["executionArn"]


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
    seen = 0
    started = time.monotonic()
    while True:
        history = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, reverseOrder=False
        )["events"]
        for event in history[seen:]:
            entered = event.get("stateEnteredEventDetails")
            if entered:
                progress(f"{event['timestamp']:%H:%M:%S} {entered['name']}")
        seen = len(history)
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in FINAL:
            return described
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise StartError(f"{execution_arn} still {described['status']}; stopped following")
        sleep(poll_seconds)


def download_report(output: dict[str, Any], s3: Any, destination: str | Path) -> Path:
    match = S3_URI.match(output.get("report_uri", ""))
    if not match:
        raise StartError("the execution's output has no report_uri")
    target = Path(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(match["bucket"], match["key"], str(target))
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

    session = boto3.Session(region_name=args.region)
    sfn, s3 = session.client("stepfunctions"), session.client("s3")
    try:
        stack = find_stack(args.stack, session.client("cloudformation"))
        arn = start_run(args.input, stack, sfn=sfn, s3=s3, execution_name=args.name)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
    report = download_report(output, s3, target)
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
