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
from rightsizer.history import RunDiff
from rightsizer.loadgen.target import HttpTarget
from rightsizer.payloads import LoadedPayload, load_payloads
from rightsizer.pricing import resolve_prices
from rightsizer.recommend import Recommendation
from rightsizer.results import stored_prices, write_results
from rightsizer.schema import (
    BenchmarkInput,
    GenerativeModel,
    InstanceTypeSpec,
    LocalModel,
    SyntheticModel,
)
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
    WHAT_IF,
    LocalRunStore,
    RunStore,
    SubStore,
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


@dataclass
class RunOutcome:
    run_id: str
    store: RunStore
    recommendation: Recommendation
    summaries: list[TypeSummary]
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    since_last_run: RunDiff | None = None


class NotLocalError(ValueError):
    """The input's model runs on SageMaker only: no local endpoint can serve it."""


@dataclass
class RunContext:
    benchmark: BenchmarkInput
    model: LocalModel | SyntheticModel | GenerativeModel
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
    model = local_model(benchmark)
    payloads = load_payloads(benchmark.payloads, base_dir)
    prices = resolve_prices(benchmark)
    run_id = run_id or new_run_id(benchmark.name)
    store = open_store(benchmark.results, run_id)
    write_json(store, INPUT, benchmark.model_dump(mode="json"))
    context = RunContext(
        benchmark, model, base_dir, payloads, store, progress or (lambda _t, _m: None),
        threading.Event(),
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
    conclusion = write_results(store, benchmark, ordered, prices)
    return RunOutcome(run_id, store, conclusion.recommendation, ordered, interrupted,
                      since_last_run=conclusion.since_last_run)


def local_model(benchmark: BenchmarkInput) -> LocalModel | SyntheticModel | GenerativeModel:
    """The input's model if a local endpoint can serve it; raises ``NotLocalError`` if not."""
    model = benchmark.model
    if isinstance(model, LocalModel | SyntheticModel | GenerativeModel):
        return model
    raise NotLocalError(
        f"model.kind: {model.kind!r} runs on SageMaker, and `rightsizer run` uses local endpoints "
        "only: deploy the stack and run `rightsizer start FILE --stack NAME` (docs/aws.md)"
    )


def rebuild_report(
    run: str | Path, min_rps: float | None = None, max_rps: float | None = None
) -> RunOutcome:
    """Recommendation and report from stored results (a run folder or its s3:// URI); no load.

    Without figures, the run's own (e.g. after a failed recommendation step). With other traffic
    figures, a what-if beside them (``what-if/min-A-max-B/``): the run's own conclusion stays."""
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
    what_if = min_rps is not None or max_rps is not None
    target = SubStore(store, what_if_folder(benchmark)) if what_if else store
    conclusion = write_results(target, benchmark, summaries, prices, compare_runs=not what_if)
    return RunOutcome(store.run_id, target, conclusion.recommendation, summaries, notes=notes,
                      since_last_run=conclusion.since_last_run)


def what_if_folder(benchmark: BenchmarkInput) -> str:
    """``what-if/min-20-max-150``: named by the traffic figures it was priced for."""
    traffic = benchmark.traffic
    return f"{WHAT_IF}/min-{traffic.min_rps:g}-max-{traffic.max_rps:g}"


def benchmark_type(spec: InstanceTypeSpec, context: RunContext) -> TypeSummary:
    """One instance type, start to finish. Never raises: failures become failed summaries."""
    run = _TypeRun(spec, context)
    try:
        summary = run.stages()
    except Exception as exc:
        summary = run.failure(exc)
    finally:
        run.endpoint.delete()
    summary.finished_at = now_iso()
    write_summary(context.store, summary)
    _keep_files(context.store, spec.instance_type, run.out_dir)
    run.say(_verdict(summary))
    return summary


class _TypeRun:
    """One instance type's endpoint, its files' folder and the stage it has reached."""

    def __init__(self, spec: InstanceTypeSpec, context: RunContext) -> None:
        self.spec = spec
        self.context = context
        self.name = spec.instance_type
        self.started = now_iso()
        self.stage = "deploy"
        self.out_dir = _type_dir(context.store, self.name)
        self.endpoint = LocalEndpoint(
            context.model,
            spec,
            model_root=context.base_dir,
            log_dir=self.out_dir,
            request_timeout_s=context.benchmark.load.request_timeout_seconds,
        )

    def stages(self) -> TypeSummary:
        """Deploy, smoke test, load search; an exception leaves ``stage`` where it happened."""
        if self.context.stop.is_set():
            return self.failed("interrupted before it started")
        self.say("deploying")
        self.endpoint.deploy(DEPLOY_TIMEOUT_SECONDS)
        self.stage = "smoke_test"
        self.say(f"ready at {self.endpoint.url}; smoke test")
        problem = local_smoke_test(self.endpoint.url, self.context.payloads)
        if problem:
            return self.failed(problem)
        self.stage = "load_test"
        return find_max_rate(
            HttpTarget(self.endpoint.url),
            self.context.payloads,
            self.context.benchmark.objective,
            self.context.benchmark.load,
            self.out_dir,
            instance_type=self.name,
            instance_count=self.spec.count,
            progress=self.say,
            should_stop=self.stop_reason,
            target_health=self.endpoint_gone,
        )

    def failure(self, exc: Exception) -> TypeSummary:
        # When the endpoint died or the user interrupted, that is the real cause.
        cause = self._load_test_cause() if self.stage == "load_test" else None
        return self.failed(cause or _describe(exc))

    def _load_test_cause(self) -> str | None:
        gone = self.endpoint_gone()
        return self.stop_reason() or (gone and f"the endpoint died during the load test: {gone}")

    def failed(self, reason: str) -> TypeSummary:
        return failed_summary(
            self.name, self.spec.count, self.stage, reason,
            method=self.context.benchmark.load.method, started_at=self.started,
        )

    def say(self, message: str) -> None:
        self.context.progress(self.name, message)

    def stop_reason(self) -> str | None:
        return "interrupted (Ctrl-C or SIGTERM)" if self.context.stop.is_set() else None

    def endpoint_gone(self) -> str | None:
        # An interrupted run stops its endpoints itself: that is not a death.
        return None if self.context.stop.is_set() else self.endpoint.health()


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, DeployError) else f"{type(exc).__name__}: {exc}"


def _type_dir(store: RunStore, name: str) -> Path:
    """Where a type's files are written: its folder of a local run, else a scratch folder."""
    if isinstance(store, LocalRunStore):
        out_dir = store.path / name
    else:
        out_dir = Path(tempfile.mkdtemp(prefix=name))
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _keep_files(store: RunStore, name: str, out_dir: Path) -> None:
    """Copy a scratch folder's files (Locust's CSVs, the endpoint log) to the store, then drop it.

    ``summary.json`` is written on its own; a local run's folder is already in place."""
    if isinstance(store, LocalRunStore):
        return
    for path in sorted(out_dir.iterdir()):
        if path.name != "summary.json":
            store.write_bytes(f"{name}/{path.name}", path.read_bytes())
    shutil.rmtree(out_dir, ignore_errors=True)


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
