"""``rightsizer``: validate, schema, run, report, history, diff, loadtest, start, schedule."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rightsizer.history import (
    DEFAULT_THRESHOLD,
    RunRecord,
    compare,
    format_diff,
    format_history,
    newest_first,
    parse_run_id,
)
from rightsizer.model_env import describe_local_model
from rightsizer.payloads import PayloadError, load_payloads
from rightsizer.schema import LOCAL_MODEL_KINDS, BenchmarkInput, LocalModel, format_errors

if TYPE_CHECKING:
    from rightsizer.aws.schedules import Schedule
    from rightsizer.recommend import Recommendation

EXIT_INVALID = 2
EXIT_REGRESSION = 3
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """A bad input file; the message names the field and the fix."""


def check_input(path: Path) -> BenchmarkInput:
    """Everything that can be checked offline: schema, payload files, prices, the cost cap.

    Every problem is one line ``field.path: what is wrong and how to fix it``.
    """
    benchmark = _parse_input_file(path)
    _check_offline(path, benchmark)
    return benchmark


def _parse_input_file(path: Path) -> BenchmarkInput:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not a valid input:\n(input): not valid JSON: not UTF-8 text"
        ) from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not a valid input:\n(input): not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}"
        ) from exc
    if not isinstance(raw, dict):
        raise InputError(
            f"{path} is not a valid input:\n(input): must be a JSON object with the fields of "
            f"`rightsizer schema`, not {type(raw).__name__}"
        )
    try:
        return BenchmarkInput.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path} is not a valid input:\n{format_errors(exc)}") from exc


def _check_offline(path: Path, benchmark: BenchmarkInput) -> None:
    from rightsizer import cost
    from rightsizer.pricing import PriceNotFoundError, resolve_prices

    try:
        if benchmark.model.kind in LOCAL_MODEL_KINDS:
            load_payloads(benchmark.payloads, path.parent)
        prices = resolve_prices(benchmark)
    except PriceNotFoundError as exc:
        lines = cost.missing_price_lines(benchmark, exc.missing)
        raise InputError(f"{path} is not a valid input:\n" + "\n".join(lines)) from exc
    except (PayloadError, ValueError) as exc:
        raise InputError(f"{path} is not a valid input:\n{exc}") from exc
    problem = cost.cap_problem(benchmark, cost.worst_case(benchmark, prices))
    if problem:
        raise InputError(f"{path} is not a valid input:\n{problem}")


def cmd_validate(args: argparse.Namespace) -> int:
    from rightsizer import cost
    from rightsizer.pricing import resolve_prices

    benchmark = check_input(args.file)
    types = ", ".join(s.instance_type for s in benchmark.specs)
    print(f"{args.file}: valid. {len(benchmark.specs)} instance types: {types}")
    if isinstance(benchmark.model, LocalModel):  # which script and requirements it will use
        print("\n".join(describe_local_model(benchmark.model, args.file.parent)))
    estimate = cost.worst_case(benchmark, resolve_prices(benchmark))
    print(cost.format_estimate(estimate))
    if estimate.bounds.where == "aws":
        from rightsizer.aws.settings import DEFAULT_DEPLOY_TIMEOUT_SECONDS, DEFAULT_POLL_SECONDS

        print(
            "(AWS bounds with the template's defaults, DeployTimeoutSeconds "
            f"{DEFAULT_DEPLOY_TIMEOUT_SECONDS} and PollSeconds {DEFAULT_POLL_SECONDS}; "
            "see docs/input.md)"
        )
    if benchmark.max_cost_usd is not None:
        print(f"within the cap max_cost_usd = ${benchmark.max_cost_usd:,.2f}")
    elif not benchmark.specs[0].is_local:
        print('cap it with "max_cost_usd" in the input to refuse runs that could cost more')
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(BenchmarkInput.model_json_schema(), indent=2))
    return 0


class ProgressPrinter:
    """One line per event, prefixed with the instance type and the elapsed time."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, instance_type: str, message: str) -> None:
        elapsed = time.monotonic() - self.began
        with self.lock:
            print(f"[{elapsed:6.0f}s] {instance_type:>12}  {message}", flush=True)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from rightsizer.pipeline import NotLocalError, local_model, run_benchmark

    benchmark = check_input(args.file)
    try:
        local_model(benchmark)
    except NotLocalError as exc:
        raise InputError(f"{args.file}: {exc}") from exc
    if args.results:
        benchmark = benchmark.model_copy(update={"results": args.results})
    # SIGTERM (e.g. from a container runtime) cleans up exactly like Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(
        f"right-sizing {benchmark.name}: {len(benchmark.specs)} instance types, "
        f"traffic {benchmark.traffic.min_rps:g}-{benchmark.traffic.max_rps:g} rps"
    )
    outcome = run_benchmark(benchmark, args.file.parent, progress=ProgressPrinter())
    print()
    print(format_recommendation(outcome.recommendation))
    print(f"\nreport:  {outcome.store.uri('report.html')}")
    print(f"results: {outcome.store.uri()}")
    if outcome.since_last_run is not None:
        print(f"\nsince last run:\n{format_diff(outcome.since_last_run)}")
    if outcome.interrupted:
        print("interrupted: the results above cover only the types that finished")
        return EXIT_INTERRUPTED
    return 0 if outcome.recommendation.recommended else 1


def format_recommendation(recommendation: Recommendation) -> str:
    rows = [("type", "status", "rps/inst", "inst min-max", "$/h min-max", "$/M inf", "p99 ms")]
    for option in recommendation.options:
        if option.status == "viable":
            lower = "≥" if option.capacity_is_lower_bound else ""
            rows.append(
                (
                    option.instance_type,
                    f"#{option.rank}",
                    f"{lower}{option.capacity_per_instance:.1f}",
                    f"{option.instances_at_min}-{option.instances_at_max}",
                    f"{option.cost_per_hour_at_min:.3f}-{option.cost_per_hour_at_max:.3f}",
                    f"{option.cost_per_million_inferences:.3f}",
                    f"{option.p99_ms:.0f}" if option.p99_ms is not None else "-",
                )
            )
        else:
            rows.append((option.instance_type, "not viable", "-", "-", "-", "-", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n" + recommendation.explanation


def cmd_report(args: argparse.Namespace) -> int:
    from rightsizer.pipeline import rebuild_report
    from rightsizer.s3 import S3ReadError

    try:
        outcome = rebuild_report(args.run_dir, args.min_rps, args.max_rps)
    except ValidationError as exc:  # before ValueError: it is one
        raise InputError(f"--min-rps/--max-rps:\n{format_errors(exc)}") from exc
    except (FileNotFoundError, ValueError, S3ReadError) as exc:  # not a run, or unreadable
        raise InputError(f"run_dir: {exc}") from exc
    for note in outcome.notes:
        print(f"note: {note}")
    print(format_recommendation(outcome.recommendation))
    print(f"\nreport: {outcome.store.uri('report.html')}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from rightsizer.results import read_record
    from rightsizer.store import open_results

    with _unreadable_as_input_error("results"):
        results = open_results(args.results)
        ids = [i for i in results.run_ids()
               if (parsed := parse_run_id(i)) and args.name in (None, parsed[0])]
        records = [r for i in ids if (r := read_record(results.run(i))) is not None]
    if not records:
        which = f" named {args.name!r}" if args.name else ""
        print(f"no runs{which} in {args.results}")
        return 0
    print(format_history(newest_first(records)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    if not 0 <= args.threshold < 1:
        raise InputError(f"--threshold: {args.threshold:g} must be a fraction in [0, 1), e.g. 0.1")
    old, new = (_finished_record(args.old, "old"), _finished_record(args.new, "new"))
    diff = compare(old, new, args.threshold)
    print(format_diff(diff))
    return EXIT_REGRESSION if diff.regressed else 0


def _finished_record(run: str, field_name: str) -> RunRecord:
    from rightsizer.results import read_record
    from rightsizer.store import open_run

    with _unreadable_as_input_error(field_name):
        record = read_record(open_run(run))
    if record is None:
        raise InputError(f"{field_name}: {run} has a run id rightsizer did not make "
                         "(<name>-<UTC start>-<hash>)")
    if record.status == "unfinished":
        raise InputError(f"{field_name}: {run} has no recommendation.json yet: it is still "
                         "running or failed before it; `rightsizer report` rebuilds it")
    return record


@contextlib.contextmanager
def _unreadable_as_input_error(field_name: str) -> Iterator[None]:
    from rightsizer.s3 import S3ReadError

    try:
        yield
    except (FileNotFoundError, ValueError, S3ReadError) as exc:  # not a run, or unreadable
        raise InputError(f"{field_name}: {exc}") from exc


def cmd_schedule(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import NoCredentialsError, NoRegionError

    from rightsizer.aws import schedules

    try:
        session = boto3.Session(region_name=args.region)
        scheduler, s3 = session.client("scheduler"), session.client("s3")
        if args.action == "add":
            target = schedules.find_target(args.stack, session.client("cloudformation"))
            made = schedules.add_schedule(args.file, target, args.rate, scheduler=scheduler,
                                          s3=s3, name=args.name)
            kept = f"; input kept at {made.input_uri}" if made.input_uri else ""
            print(f"schedule {made.name}: {made.expression}, starts "
                  f"{target.stack.state_machine_arn}{kept}")
        elif args.action == "list":
            _print_schedules(schedules.list_schedules(args.stack, scheduler=scheduler))
        else:
            gone = schedules.remove_schedule(args.stack, args.name, scheduler=scheduler, s3=s3)
            print(f"removed schedule {gone.name}")
    except (NoRegionError, NoCredentialsError) as exc:
        raise InputError(f"{exc}: pass --region, or configure AWS credentials") from exc
    except schedules.ScheduleError as exc:
        raise InputError(str(exc)) from exc
    return 0


def _print_schedules(found: Sequence[Schedule]) -> None:
    if not found:
        print("no schedules")
    for s in found:
        kept = f"  (input {s.input_uri})" if s.input_uri else ""
        print(f"{s.name}  {s.state}  {s.expression}{kept}")


def _schedule_parser(sub: Any) -> None:
    p = sub.add_parser("schedule", help="re-benchmark on a schedule (EventBridge Scheduler)")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="a schedule that starts the stack with FILE")
    add.add_argument("file", type=Path)
    add.add_argument("--rate", required=True, help='e.g. "rate(7 days)" or "cron(0 3 ? * MON *)"')
    add.add_argument("--name", help="the schedule's name after the stack's (default: the input's)")
    listed = actions.add_parser("list", help="the stack's schedules")
    remove = actions.add_parser("remove", help="delete one of the stack's schedules")
    remove.add_argument("name")
    for q in (add, listed, remove):
        q.add_argument("--stack", required=True)
        q.add_argument("--region")
    p.set_defaults(func=cmd_schedule)


def cmd_loadtest(args: argparse.Namespace) -> int:
    from rightsizer.engine import find_max_rate
    from rightsizer.loadgen.target import HttpTarget
    from rightsizer.schema import LoadSettings, Objective, Payload

    try:
        objective = Objective(
            max_failure_rate=args.max_failure_rate,
            latency_percentile=args.latency_percentile,
            max_latency_ms=args.max_latency_ms,
            ttft_percentile=args.ttft_percentile,
            max_ttft_ms=args.max_ttft_ms,
            min_tokens_per_second=args.min_tokens_per_second,
        )
        if objective.max_ttft_ms is not None and not args.stream:
            raise InputError("--max-ttft-ms needs --stream: only a streamed response has a "
                             "time to first token")
        settings = {
            "step_seconds": args.step_seconds,
            "warmup_seconds": args.warmup_seconds,
            "max_rps": args.max_rps,
            "start_rps": args.start_rps,
            "processes": args.processes,
            "method": args.method,
            "precision": args.precision,
        }
        load = LoadSettings(**{k: v for k, v in settings.items() if v is not None})
        payloads = load_payloads(
            [Payload(path=str(args.payload), content_type=args.content_type, accept=args.accept,
                     stream=args.stream)]
        )
    except ValidationError as exc:
        raise InputError(format_errors(exc)) from exc
    except PayloadError as exc:
        raise InputError(str(exc).replace("payloads[0].path", "--payload")) from exc
    signal.signal(signal.SIGTERM, _raise_interrupt)
    printer = ProgressPrinter()
    summary = find_max_rate(
        HttpTarget(args.url.rstrip("/")),
        payloads,
        objective,
        load,
        args.out,
        instance_type="endpoint",
        progress=lambda message: printer("loadtest", message),
    )
    print(
        json.dumps(
            {
                "max_sustainable_rps": summary.max_sustainable_rps,
                "output_tokens_per_second": (
                    summary.tokens.output_tokens_per_second if summary.tokens else None
                ),
                "bottleneck": summary.bottleneck,
                "status": summary.status,
                "reason": summary.reason,
            },
            indent=2,
        )
    )
    print(f"summary: {args.out / 'summary.json'}")
    return 0 if summary.status == "succeeded" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rightsizer",
        description="Find the cheapest SageMaker real-time endpoint for a load and latency.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check an input file offline")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the input's JSON Schema")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("run", help="right-size on local endpoints (the whole job)")
    p.add_argument("file", type=Path)
    p.add_argument("--results", help="override the input's results folder")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="rebuild recommendation and report from a run's results")
    p.add_argument(
        "run_dir", help="a run folder (results/runs/<run id>) or s3://bucket/runs/<run id>/"
    )
    p.add_argument("--min-rps", type=float)
    p.add_argument("--max-rps", type=float)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("history", help="list the runs in a results folder or s3:// prefix")
    p.add_argument("results", help="a results folder (the input's \"results\") or s3://bucket")
    p.add_argument("--name", help="only the runs of this input name")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("diff", help="compare two runs; exit 3 when NEW regresses")
    p.add_argument("old", help="a run folder or s3://bucket/runs/<run id>/")
    p.add_argument("new", help="a run folder or s3://bucket/runs/<run id>/")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="the fall in capacity or rise in cost that counts (0.10 = 10%%)")
    p.set_defaults(func=cmd_diff)

    _schedule_parser(sub)

    p = sub.add_parser(
        "start",
        help="start (and with --wait follow) an execution on a deployed stack",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="FILE --stack NAME [--wait] ...")

    p = sub.add_parser("loadtest", help="find one endpoint's maximum sustainable rate")
    p.add_argument("--url", required=True, help="base URL of a server with POST /invocations")
    p.add_argument("--payload", type=Path, required=True)
    p.add_argument("--content-type", required=True)
    p.add_argument("--accept")
    p.add_argument("--stream", action="store_true",
                   help="read streamed responses: time to first token, tokens/s")
    p.add_argument("--max-failure-rate", type=float, default=0.01)
    p.add_argument("--latency-percentile", type=float)
    p.add_argument("--max-latency-ms", type=float)
    p.add_argument("--ttft-percentile", type=float)
    p.add_argument("--max-ttft-ms", type=float)
    p.add_argument("--min-tokens-per-second", type=float)
    p.add_argument("--step-seconds", type=float)
    p.add_argument("--warmup-seconds", type=float)
    p.add_argument("--start-rps", type=float)
    p.add_argument("--max-rps", type=float)
    p.add_argument("--precision", type=float)
    p.add_argument("--processes", type=int)
    p.add_argument("--method", choices=["search", "legacy"])
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_loadtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["start"]:  # its own parser, options and --help included
        from rightsizer.aws.start import main as start_main

        return start_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
