"""The Fargate load generator's logic: parameters from the environment, load, upload.

The state machine passes the parameters as ``ContainerOverrides.Environment`` (built by
``validate.loadgen_environment``); the task definition adds ``RIGHTSIZER_PROCESSES`` (its vCPUs).
The load runs against the SageMaker runtime API with SigV4-signed ``InvokeEndpoint`` calls, no
API Gateway or Lambda in between, so the figures are the endpoint's own.

Two modes (``RIGHTSIZER_MODE``):

* unset: the load test. The scratch folder (/tmp, see ``scratch``) is checked first, so that an
  image that cannot write it fails with one line naming the folder, its owner/mode and the uid.
  While the load runs, the engine asks SageMaker after every step whether the endpoint is still
  in service (``endpoint_health``): one that went Failed or was deleted ends the test with
  that reason.
* ``preflight``: a check run before any endpoint exists (``preflight``): scratch folder, worker
  start, runtime host reachable, run folder writable.

Exit codes: 0 after a measurement (even one where nothing passed: that is a result) or a passed
preflight, 2 for bad parameters, 1 for any other failure, so that ``ecs:runTask.sync`` fails the
item. On a load-test failure a failed ``summary.json`` with the reason is uploaded when possible.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from rightsizer.aws.scratch import ScratchNotWritable, ensure_writable, scratch_dir
from rightsizer.env import EnvError, integer, required, s3_uri
from rightsizer.schema import LoadSettings, Objective, Payload, format_errors
from rightsizer.store import SUMMARY, S3RunStore, write_summary
from rightsizer.summary import TypeSummary, failed_summary

log = logging.getLogger("rightsizer.loadgen_task")

EXIT_OK, EXIT_FAILED, EXIT_BAD_PARAMETERS = 0, 1, 2


class TaskParameterError(ValueError):
    """A parameter is missing or malformed; the message names the variable."""


class ResultsNotSaved(RuntimeError):
    """The load test ran but its results could not be written; the summary went to the log."""


@dataclass(frozen=True)
class TaskParams:
    endpoint_name: str
    region: str
    instance_type: str
    instance_count: int
    results_uri: str
    run_id: str
    objective: Objective
    load: LoadSettings
    payloads: list[Payload]
    processes: int
    endpoint_url: str | None = None


def params_from_env(env: Mapping[str, str] | None = None) -> TaskParams:
    env = os.environ if env is None else env
    try:
        return _params(env)
    except EnvError as exc:
        raise TaskParameterError(str(exc)) from None


def _params(env: Mapping[str, str]) -> TaskParams:
    def model(key: str, parse: Callable[[str], Any]) -> Any:
        raw = required(env, key)
        try:
            return parse(raw)
        except ValidationError as exc:
            raise TaskParameterError(f"{key}: {format_errors(exc)}") from None
        except ValueError as exc:
            raise TaskParameterError(f"{key}: not valid JSON ({exc})") from None

    payloads = model(
        "RIGHTSIZER_PAYLOADS",
        lambda raw: TypeAdapter(list[Payload]).validate_json(raw),
    )
    if not payloads:
        raise TaskParameterError("RIGHTSIZER_PAYLOADS: the list is empty")
    return TaskParams(
        endpoint_name=required(env, "RIGHTSIZER_ENDPOINT_NAME"),
        region=required(env, "RIGHTSIZER_REGION"),
        instance_type=required(env, "RIGHTSIZER_INSTANCE_TYPE"),
        instance_count=integer(env, "RIGHTSIZER_INSTANCE_COUNT", 1, minimum=1),
        results_uri=s3_uri(env, "RIGHTSIZER_RESULTS_URI"),
        run_id=required(env, "RIGHTSIZER_RUN_ID"),
        objective=model("RIGHTSIZER_OBJECTIVE", Objective.model_validate_json),
        load=model("RIGHTSIZER_LOAD", LoadSettings.model_validate_json),
        payloads=payloads,
        processes=integer(env, "RIGHTSIZER_PROCESSES", os.cpu_count() or 1, minimum=1),
        endpoint_url=env.get("RIGHTSIZER_RUNTIME_ENDPOINT_URL") or None,
    )


def run_task(
    params: TaskParams,
    *,
    s3: Any = None,
    sagemaker: Any = None,
    find_max_rate: Callable[..., TypeSummary] | None = None,
    progress: Callable[[str], None] | None = None,
    scratch: Path | None = None,
) -> TypeSummary:
    """Measure the endpoint and upload ``<type>/summary.json`` and Locust's CSVs."""
    # botocore (ssl) only when used: this module may be a spawned worker's __main__, where ssl
    # must not be imported before Locust's gevent patches it.
    from rightsizer.aws.endpoint_health import EndpointHealth, sagemaker_client
    from rightsizer.loadgen.target import SageMakerTarget
    from rightsizer.payloads import load_payloads

    if find_max_rate is None:
        from rightsizer.engine import find_max_rate as engine_find_max_rate

        find_max_rate = engine_find_max_rate
    scratch = scratch or scratch_dir()
    ensure_writable(scratch)
    store = S3RunStore(params.results_uri, params.run_id, s3)
    payloads = load_payloads(params.payloads, s3_client=store.s3)
    load = params.load.model_copy(update={"processes": params.processes})
    target = SageMakerTarget(params.endpoint_name, params.region, params.endpoint_url)
    health = EndpointHealth(params.endpoint_name, sagemaker or sagemaker_client(params.region))
    with tempfile.TemporaryDirectory(prefix="rightsizer-", dir=scratch) as tmp:
        out_dir = Path(tmp)
        summary = find_max_rate(
            target, payloads, params.objective, load, out_dir,
            instance_type=params.instance_type,
            instance_count=params.instance_count,
            progress=progress,
            target_health=health,
        )
        try:
            upload_results(store, params.instance_type, out_dir)
            # summary.json last: its presence means the rest is there.
            write_summary(store, summary)
        except Exception as exc:
            # The measurement must outlive the upload: the task's log keeps it.
            log.error("summary: %s", summary.model_dump_json())
            raise ResultsNotSaved(
                f"could not write the results to {store.uri(params.instance_type + '/')} "
                f"({exc}); the measured summary is in this task's log, line 'summary: ...'"
            ) from exc
    return summary


def upload_results(store: S3RunStore, instance_type: str, out_dir: Path) -> list[str]:
    uploaded = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(out_dir).as_posix()
        if relative == SUMMARY or path.name.endswith(".tmp"):
            continue
        content_type = "text/csv" if path.suffix == ".csv" else "application/octet-stream"
        uploaded.append(
            store.write_bytes(f"{instance_type}/{relative}", path.read_bytes(), content_type)
        )
    return uploaded


def record_failure(params: TaskParams, reason: str, s3: Any = None) -> None:
    """Best effort: a failed summary.json so the report shows the container's own reason."""
    try:
        store = S3RunStore(params.results_uri, params.run_id, s3)
        write_summary(
            store,
            failed_summary(params.instance_type, params.instance_count, "load_test", reason),
        )
    except Exception:
        log.exception("could not upload the failed summary")


def main(
    env: Mapping[str, str] | None = None,
    *,
    s3: Any = None,
    sagemaker: Any = None,
    find_max_rate: Callable[..., TypeSummary] | None = None,
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    env = os.environ if env is None else env
    mode = env.get("RIGHTSIZER_MODE", "").strip()
    if mode == "preflight":
        return run_preflight(env, s3)
    if mode:
        log.error("bad task parameters: RIGHTSIZER_MODE=%r is not 'preflight' (unset: a load "
                  "test)", mode)
        return EXIT_BAD_PARAMETERS
    try:
        params = params_from_env(env)
    except TaskParameterError as exc:
        log.error("bad task parameters: %s", exc)
        return EXIT_BAD_PARAMETERS
    log.info(
        "load test of %s (%s x%d) with %d processes; results under %s runs/%s/%s/",
        params.endpoint_name, params.instance_type, params.instance_count, params.processes,
        params.results_uri, params.run_id, params.instance_type,
    )
    try:
        summary = run_task(
            params, s3=s3, sagemaker=sagemaker, find_max_rate=find_max_rate,
            progress=lambda m: log.info("%s", m), scratch=scratch_dir(env),
        )
    except (ScratchNotWritable, ResultsNotSaved) as exc:
        # Their message says what is wrong and where: a traceback would only bury it.
        log.error("load test failed: %s", exc)
        record_failure(params, f"load generator error: {exc}", s3)
        return EXIT_FAILED
    except Exception as exc:
        log.error("load test failed: %s\n%s", exc, traceback.format_exc())
        record_failure(params, f"load generator error: {type(exc).__name__}: {exc}", s3)
        return EXIT_FAILED
    log.info("done: %s", json.dumps({
        "status": summary.status,
        "max_sustainable_rps": summary.max_sustainable_rps,
        "bottleneck": summary.bottleneck,
        "reason": summary.reason,
    }))
    return EXIT_OK


def run_preflight(env: Mapping[str, str], s3: Any = None) -> int:
    from rightsizer.aws import preflight

    try:
        params = preflight.preflight_params_from_env(env)
    except preflight.PreflightParameterError as exc:
        log.error("bad preflight parameters: %s", exc)
        return EXIT_BAD_PARAMETERS
    log.info("preflight for run %s in %s", params.run_id, params.region)
    results = preflight.run_preflight(params, scratch_dir(env), s3=s3)
    return EXIT_OK if preflight.log_results(results) else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
