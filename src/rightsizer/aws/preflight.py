"""The load generator's check mode (``RIGHTSIZER_MODE=preflight``): can a real load test run?

The state machine runs the task once this way before it creates any endpoint, so that a
broken image or network fails in seconds instead of after an endpoint was paid for. Checks:

* ``scratch``: the scratch folder (/tmp, ``TMPDIR``) is writable by the task's user;
* ``worker``: one load-generator worker process starts, by the engine's own spawn path
  (Locust, gevent and the SigV4 signer load, AWS credentials are found);
* ``runtime``: the SageMaker runtime host for the region (or ``RIGHTSIZER_RUNTIME_ENDPOINT_URL``)
  resolves and accepts a TCP connection (subnets, security group, NAT or VPC endpoint);
* ``results``: ``runs/<run_id>/preflight/loadgen.json`` is written with every check's result.

Parameters: ``RIGHTSIZER_RESULTS_URI``, ``RIGHTSIZER_RUN_ID``, ``RIGHTSIZER_REGION`` and an
optional ``RIGHTSIZER_RUNTIME_ENDPOINT_URL``. Bounded: about 45 s at worst.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config

from rightsizer.aws.scratch import ScratchNotWritable, ensure_writable
from rightsizer.env import EnvError, required, s3_uri
from rightsizer.loadgen.target import runtime_url
from rightsizer.store import S3RunStore

log = logging.getLogger("rightsizer.preflight")

REPORT_KEY = "preflight/loadgen.json"
WORKER_START_SECONDS = 30.0
CONNECT_SECONDS = 5.0
S3_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=3, read_timeout=5
)


class PreflightParameterError(ValueError):
    """A parameter is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class PreflightParams:
    results_uri: str
    run_id: str
    region: str
    endpoint_url: str | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def preflight_params_from_env(env: Mapping[str, str]) -> PreflightParams:
    try:
        return PreflightParams(
            results_uri=s3_uri(env, "RIGHTSIZER_RESULTS_URI"),
            run_id=required(env, "RIGHTSIZER_RUN_ID"),
            region=required(env, "RIGHTSIZER_REGION"),
            endpoint_url=env.get("RIGHTSIZER_RUNTIME_ENDPOINT_URL") or None,
        )
    except EnvError as exc:
        raise PreflightParameterError(str(exc)) from None


def check_scratch(folder: Path) -> CheckResult:
    try:
        ensure_writable(folder)
    except ScratchNotWritable as exc:
        return CheckResult("scratch", False, str(exc))
    return CheckResult("scratch", True, f"{folder} is writable by uid {os.getuid()}")


def check_worker(params: PreflightParams) -> CheckResult:
    """Start and stop one worker exactly as the engine does; no request is sent."""
    from rightsizer.loadgen.processes import LoadGenerator
    from rightsizer.loadgen.target import SageMakerTarget
    from rightsizer.payloads import LoadedPayload

    target = SageMakerTarget("preflight", params.region, params.endpoint_url)
    payload = LoadedPayload(b"{}", "application/json", None, 1.0)
    try:
        with LoadGenerator(target, [payload], start_timeout=WORKER_START_SECONDS):
            pass
    except Exception as exc:
        return CheckResult("worker", False, f"a load-generator worker did not start: {exc}")
    return CheckResult("worker", True, "a load-generator worker process started and stopped")


def runtime_address(params: PreflightParams) -> tuple[str, int]:
    parts = urlsplit(runtime_url(params.region, params.endpoint_url))
    default_port = 80 if parts.scheme == "http" else 443
    return parts.hostname or "", parts.port or default_port


def check_runtime(params: PreflightParams) -> CheckResult:
    host, port = runtime_address(params)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return CheckResult(
            "runtime", False,
            f"cannot resolve the SageMaker runtime host {host} ({exc}): check the VPC's DNS",
        )
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        return CheckResult(
            "runtime", False,
            f"cannot connect to {host}:{port} ({exc}): the task's subnets need a route out "
            "(NAT gateway, public IP or a SageMaker runtime VPC endpoint) and its security "
            f"group must allow outbound TCP {port}",
        )
    return CheckResult("runtime", True, f"{host}:{port} accepts connections")


def write_report(params: PreflightParams, results: list[CheckResult], s3: Any) -> CheckResult:
    """Write the report; a successful write is itself the proof that the run folder is writable."""
    try:
        store = S3RunStore(params.results_uri, params.run_id, s3)
        where = store.uri(REPORT_KEY)
        written = CheckResult("results", True, f"wrote {where}")
        body = json.dumps(
            {"ok": all(r.ok for r in results), "checks": [asdict(r) for r in [*results, written]]},
            indent=2,
        )
        store.write_bytes(REPORT_KEY, body.encode(), "application/json")
    except Exception as exc:
        return CheckResult(
            "results", False,
            f"cannot write {params.results_uri.rstrip('/')}/runs/{params.run_id}/{REPORT_KEY} "
            f"({type(exc).__name__}: {exc}): the task role needs s3:PutObject there",
        )
    return written


def run_preflight(params: PreflightParams, scratch: Path, *, s3: Any = None) -> list[CheckResult]:
    results = [check_scratch(scratch), check_worker(params), check_runtime(params)]
    return [*results, write_report(params, results, s3 or default_s3(params.region))]


def default_s3(region: str) -> Any:
    import boto3

    return boto3.client("s3", region_name=region, config=S3_CONFIG)


def log_results(results: list[CheckResult]) -> bool:
    """One line per check (a failed one says what to fix); True when all passed."""
    for result in results:
        if result.ok:
            log.info("preflight %s: ok (%s)", result.name, result.detail)
        else:
            log.error("preflight %s FAILED: %s", result.name, result.detail)
    return all(r.ok for r in results)
