"""The whole job on one machine: local endpoints stand in for SageMaker, a folder for S3.

Per instance type (several at once when ``concurrency`` > 1):
deploy -> wait until ready -> smoke test -> load search -> results written -> endpoint deleted.
The endpoint is deleted on every path (errors, Ctrl-C, SIGTERM); a failing type is recorded
with its stage and reason and the others go on. The Step Functions state machine runs the
same stages on AWS.
"""

from __future__ import annotations

import http.client
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rightsizer.endpoints.local import DeployError, LocalEndpoint, stop_all
from rightsizer.engine import find_max_rate
from rightsizer.loadgen.target import HttpTarget
from rightsizer.payloads import LoadedPayload, load_payloads
from rightsizer.pricing import resolve_prices
from rightsizer.recommend import Recommendation
from rightsizer.results import stored_prices, write_results
from rightsizer.schema import BenchmarkInput, InstanceTypeSpec
from rightsizer.smoke import (
    ANSWER_TIMEOUT_SECONDS,
    Answer,
    NoAnswer,
    SmokeTestFailed,
    no_answer_within,
    smoke_test,
)
from rightsizer.store import (
    INPUT,
    PRICES,
    LocalRunStore,
    RunStore,
    new_run_id,
    open_run,
    open_store,
    read_summaries,
    write_json,
    write_summary,
)
from rightsizer.summary import TypeSummary, failed_summary, now_iso

Progress = Callable[[str, str], None]
DEPLOY_TIMEOUT_SECONDS = 180.0


class Interrupted(Exception):
    """The run was stopped by Ctrl-C or SIGTERM; what finished is stored."""


@dataclass
class RunOutcome:
    run_id: str
    store: RunStore
    recommendation: Recommendation
    summaries: list[TypeSummary]
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class RunContext:
    benchmark: BenchmarkInput
    base_dir: Path
    payloads: list[LoadedPayload]
    store: RunStore
    progress: Progress
    stop: threading.Event


def run_benchmark(
    benchmark: BenchmarkInput,
    base_dir: Path,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Run every instance type of ``benchmark``, then recommend and report.

    Everything that can be checked (payloads, prices) is checked before any endpoint starts.
    """
    payloads = load_payloads(benchmark.payloads, base_dir)
    prices = resolve_prices(benchmark)
    run_id = run_id or new_run_id(benchmark.name)
    store = open_store(benchmark.results, run_id)
    write_json(store, INPUT, benchmark.model_dump(mode="json"))
    context = RunContext(
        benchmark, base_dir, payloads, store, progress or (lambda _t, _m: None), threading.Event()
    )
    summaries: dict[str, TypeSummary] = {}
    interrupted = False
    with ThreadPoolExecutor(max_workers=benchmark.concurrency, thread_name_prefix="type") as pool:
        futures: dict[Future[TypeSummary], InstanceTypeSpec] = {
            pool.submit(benchmark_type, spec, context): spec for spec in benchmark.specs
        }
        pending = set(futures)
        try:
            while pending:
                # A timeout keeps the main thread responsive to Ctrl-C.
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    summary = future.result()
                    summaries[summary.instance_type] = summary
        except KeyboardInterrupt:
            interrupted = True
            context.stop.set()
            stop_all()  # endpoints first: they cost money (on AWS) and hold the cores
            for future in futures:
                if future.cancel():
                    continue
                summary = future.result()
                summaries[summary.instance_type] = summary
    ordered = [summaries[s.instance_type] for s in benchmark.specs if s.instance_type in summaries]
    recommendation = write_results(store, benchmark, ordered, prices)
    return RunOutcome(run_id, store, recommendation, ordered, interrupted)


def rebuild_report(
    run: str | Path, min_rps: float | None = None, max_rps: float | None = None
) -> RunOutcome:
    """Recommendation and report from stored results (a run folder or its s3:// URI), for other
    traffic figures or after a failed recommendation step; no load."""
    store = open_run(run)
    raw = json.loads(store.read_bytes(INPUT))
    traffic = raw["traffic"]
    traffic["min_rps"] = min_rps if min_rps is not None else traffic["min_rps"]
    traffic["max_rps"] = max_rps if max_rps is not None else traffic["max_rps"]
    benchmark = BenchmarkInput.model_validate(raw)
    summaries = read_summaries(store)
    prices = stored_prices(store)
    notes = []
    if prices is None:
        prices = resolve_prices(benchmark)
        notes.append(
            f"this run kept no {PRICES}: priced in its input's region, {benchmark.region}, from "
            "the input's prices and the bundled table"
        )
    recommendation = write_results(store, benchmark, summaries, prices)
    return RunOutcome(store.run_id, store, recommendation, summaries, notes=notes)


def benchmark_type(spec: InstanceTypeSpec, context: RunContext) -> TypeSummary:
    """One instance type, start to finish. Never raises: failures become failed summaries."""
    name = spec.instance_type
    started = now_iso()
    local_dir = isinstance(context.store, LocalRunStore)
    out_dir = context.store.path / name if local_dir else Path(tempfile.mkdtemp(prefix=name))
    out_dir.mkdir(parents=True, exist_ok=True)
    endpoint = LocalEndpoint(
        context.benchmark.model,
        spec,
        model_root=context.base_dir,
        log_dir=out_dir,
        request_timeout_s=context.benchmark.load.request_timeout_seconds,
    )

    def failed(stage: str, reason: str) -> TypeSummary:
        return failed_summary(
            name, spec.count, stage, reason,
            method=context.benchmark.load.method, started_at=started,
        )

    def say(message: str) -> None:
        context.progress(name, message)

    def stop_reason() -> str | None:
        return "interrupted (Ctrl-C or SIGTERM)" if context.stop.is_set() else None

    def endpoint_gone() -> str | None:
        # An interrupted run stops its endpoints itself: that is not a death.
        return None if context.stop.is_set() else endpoint.health()

    stage = "deploy"
    try:
        if context.stop.is_set():
            summary = failed(stage, "interrupted before it started")
        else:
            say("deploying")
            endpoint.deploy(DEPLOY_TIMEOUT_SECONDS)
            stage = "smoke_test"
            say(f"ready at {endpoint.url}; smoke test")
            problem = local_smoke_test(endpoint.url, context.payloads)
            if problem:
                summary = failed(stage, problem)
            else:
                stage = "load_test"
                summary = find_max_rate(
                    HttpTarget(endpoint.url),
                    context.payloads,
                    context.benchmark.objective,
                    context.benchmark.load,
                    out_dir,
                    instance_type=name,
                    instance_count=spec.count,
                    progress=say,
                    should_stop=stop_reason,
                    target_health=endpoint_gone,
                )
    except Exception as exc:
        # When the endpoint died or the user interrupted, that is the real cause.
        cause = None
        if stage == "load_test":
            gone = endpoint_gone()
            cause = stop_reason() or (gone and f"the endpoint died during the load test: {gone}")
        summary = failed(
            stage,
            cause or (str(exc) if isinstance(exc, DeployError) else f"{type(exc).__name__}: {exc}"),
        )
    finally:
        endpoint.delete()
    summary.finished_at = now_iso()
    write_summary(context.store, summary)
    if not local_dir:
        for path in sorted(out_dir.iterdir()):
            if path.name != "summary.json":
                context.store.write_bytes(f"{name}/{path.name}", path.read_bytes())
        shutil.rmtree(out_dir, ignore_errors=True)
    say(_verdict(summary))
    return summary


def _verdict(summary: TypeSummary) -> str:
    if summary.status == "failed":
        return f"FAILED at {summary.failed_stage}: {summary.reason}"
    return (
        f"done: {summary.max_sustainable_rps:.1f} rps sustainable "
        f"(bottleneck: {summary.bottleneck}, {summary.load_seconds:.0f} s of load)"
    )


def local_smoke_test(url: str, payloads: list[LoadedPayload]) -> str | None:
    """The smoke test's rules (rightsizer.smoke) over HTTP; returns the problem, if any."""
    try:
        smoke_test(url, lambda payload: _post(url, payload), payloads)
    except SmokeTestFailed as exc:
        return str(exc)
    return None


def _post(url: str, payload: LoadedPayload) -> Answer:
    """One ``POST /invocations``, as SageMaker's runtime would send it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=ANSWER_TIMEOUT_SECONDS
    )
    headers = {"Content-Type": payload.content_type, "Accept": payload.accept or "*/*"}
    started = time.perf_counter()
    try:
        connection.request("POST", "/invocations", body=payload.body, headers=headers)
        response = connection.getresponse()
        body = response.read()
    except TimeoutError:
        raise NoAnswer(no_answer_within(ANSWER_TIMEOUT_SECONDS)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise NoAnswer(f"no answer from the endpoint ({exc})") from None
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    return Answer(response.status, body, response.getheader("Content-Type") or "", seconds)
