"""Local endpoints: server processes on 127.0.0.1 that stand in for SageMaker endpoints.

``local.<N>cpu`` means N server workers pinned to N cores (times ``count`` instances). A
``LocalModel`` runs under ``rightsizer.serving.container``; a ``SyntheticModel`` under
``rightsizer.serving.synthetic``, whose capacity comes from its slots (the cores only set its
CPU affinity); a ``GenerativeModel`` under ``rightsizer.serving.generative``, whose decode
work is split across the cores, with ``count`` instances in one process.

Before a LocalModel's server starts, ``deploy()`` makes its files ready as SageMaker would: a
model.tar.gz unpacked (``rightsizer.artifacts``), the script found and its requirements
installed into the model's own virtual environment (``rightsizer.model_env``), which then runs
the server; both are cached, so only the first deployment of a model pays for them.

No process outlives its endpoint: each server runs in its own process group, which
``delete()`` terminates; ``stop_all()`` (also run at exit) deletes every endpoint still up;
and each server exits by itself when the process that launched it dies, even by SIGKILL.

    with LocalEndpoint(model, spec, model_root=input_dir, log_dir=run_dir) as endpoint:
        endpoint.deploy()
        ...  # load-test endpoint.url
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import rightsizer
from rightsizer.artifacts import ArtifactError, model_root
from rightsizer.model_env import ModelEnvError, ServingPlan, plan, python_for
from rightsizer.schema import GenerativeModel, InstanceTypeSpec, LocalModel, SyntheticModel
from rightsizer.serving.process import EXIT_PORT_IN_USE, HOST

STOP_GRACE_S = 5.0
TAIL_BYTES = 4000
# health(): a server that is up answers /ping between model requests, even when overloaded
# (the front process answers it); these bound how long a busy one may take.
PING_TIMEOUT_S = 5.0
PING_ATTEMPTS = 3
_PORT_ATTEMPTS = 3
# Endpoints whose process may still run, for stop_all(); a dict keeps insertion order.
_LIVE: dict[int, LocalEndpoint] = {}


class DeployError(RuntimeError):
    """The endpoint did not become ready; the message ends with the server's last output."""


class _PortTaken(Exception):
    pass


def stop_all() -> None:
    """Delete every local endpoint still running (crash paths, signal handlers, exit)."""
    for endpoint in list(_LIVE.values()):
        endpoint.delete()


atexit.register(stop_all)


class LocalEndpoint:
    """One local endpoint: ``deploy()``, then send requests to ``url``, then ``delete()``."""

    def __init__(
        self,
        model: LocalModel | SyntheticModel | GenerativeModel,
        spec: InstanceTypeSpec,
        model_root: Path,
        log_dir: Path | None = None,
        *,
        cpus: Sequence[int] | None = None,
        request_timeout_s: float = 60.0,
    ) -> None:
        """``model_root``: the folder a LocalModel's path is relative to (the input file's).

        ``cpus``: the cores to pin to (default 0..N-1); give disjoint sets to endpoints that
        run at the same time. ``request_timeout_s``: the model server timeout (answers 504).
        """
        if not spec.is_local:
            raise ValueError(f"{spec.instance_type} is not a local profile such as local.1cpu")
        self.model = model
        self.spec = spec
        self.model_root = Path(model_root)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.cores = spec.local_cpus * spec.count
        self.cpus = list(cpus) if cpus is not None else list(range(self.cores))
        self.request_timeout_s = request_timeout_s
        self._serving: tuple[ServingPlan, Path] | None = None  # and its Python
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    def __repr__(self) -> str:
        state = f"pid {self._proc.pid}" if self._proc else "not running"
        return f"LocalEndpoint({self.spec.instance_type}, {self.model.kind}, {state})"

    def __enter__(self) -> LocalEndpoint:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.delete()

    # --- the adapter API ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None or self._proc is None:
            raise RuntimeError(f"{self!r} is not deployed: call deploy() first")
        return f"http://{HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The server's pid, which is also its process group id; None when not running."""
        return self._proc.pid if self._proc is not None else None

    def deploy(self, timeout_s: float = 120.0) -> str:
        """Make the model ready, start the server, wait until ``/ping`` answers 200; returns
        ``url``.

        Raises DeployError if the model cannot be made ready (pip's own output when its
        requirements fail), or (with the server's output tail) if the server exits or is not
        ready within ``timeout_s``, which starts once the model is ready; the process is
        stopped by then.
        """
        if self._proc is not None:
            raise RuntimeError(f"{self!r} is already deployed")
        try:
            self._prepare()
            deadline = time.monotonic() + timeout_s
            for _ in range(_PORT_ATTEMPTS):
                self._start(_free_port())
                try:
                    self._wait_ready(deadline, timeout_s)
                    return self.url
                except _PortTaken:
                    self.delete()  # another process took the port: try a fresh one
            raise DeployError(f"{self.spec.instance_type}: no free port after "
                              f"{_PORT_ATTEMPTS} attempts")
        except BaseException:
            self.delete()
            raise

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def health(
        self, *, ping_timeout_s: float = PING_TIMEOUT_S, attempts: int = PING_ATTEMPTS
    ) -> str | None:
        """None while the server runs and answers ``/ping``; otherwise why it does not.

        The reason names the process's exit status or signal and ends with its last output.
        Never raises; asks ``/ping`` only while the process runs.
        """
        proc, port = self._proc, self._port
        if proc is None or port is None:
            return "the endpoint is not deployed (it was deleted or never started)"

        def exited() -> str | None:
            code = proc.poll()
            if code is None:
                return None
            return f"its server process (pid {proc.pid}) {describe_exit(code)}" + self._tail()

        for attempt in range(attempts):
            if gone := exited():
                return gone
            if _ping(port, ping_timeout_s):
                return None
            if attempt + 1 < attempts:
                time.sleep(0.5)
        if gone := exited():  # it may have died during the last ping
            return gone
        return (
            f"its server process (pid {proc.pid}) still runs but did not answer GET /ping with "
            f"200 ({attempts} attempts, {ping_timeout_s:g} s each)" + self._tail()
        )

    def _tail(self) -> str:
        tail = self.output_tail()
        return f"; its last output:\n{tail}" if tail else "; it wrote no output"

    def delete(self) -> None:
        """Stop the server and everything it started. Idempotent; never raises.

        Safe in signal handlers: takes no locks and waits only with timeouts.
        """
        proc, self._proc = self._proc, None
        _LIVE.pop(id(self), None)
        if proc is not None:
            # The server leads its own session, so its pid is its process group id.
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_GRACE_S)
            # Whatever is left of the group (a master that ignored TERM, stray workers).
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_GRACE_S)
        if self._log is not None:
            self._log.close()  # a temporary file is gone once closed
            self._log = None

    # --- internals ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """A LocalModel's root, script and Python, once per endpoint (cached across runs)."""
        if not isinstance(self.model, LocalModel) or self._serving is not None:
            return
        try:
            serving = plan(model_root(self.model.path, self.model_root), self.model.environment)
            self._serving = serving, python_for(serving.requirements)
        except (ArtifactError, ModelEnvError) as exc:
            raise DeployError(f"{self.spec.instance_type}: {exc}") from exc

    def command(self, port: int) -> list[str]:
        """The server's command line for ``port`` (a LocalModel's after ``deploy()`` began)."""
        cpus = ",".join(str(c) for c in self.cpus)
        common = ["--port", str(port), "--cpus", cpus, "--parent-pid", str(os.getpid())]
        if isinstance(self.model, SyntheticModel):
            return [sys.executable, "-m", "rightsizer.serving.synthetic", *common,
                    *self._synthetic_args(self.model)]
        if isinstance(self.model, GenerativeModel):
            from rightsizer.serving.generative import cli_args as generative_args

            # ``count`` instances: each its own batch, queue and weights, on its share of cores.
            return [sys.executable, "-m", "rightsizer.serving.generative", *common,
                    "--instances", str(self.spec.count), *generative_args(self.model)]
        serving, python = self._ready()
        return [str(python), "-m", "rightsizer.serving.container", *common,
                "--model-dir", str(serving.root), "--script", str(serving.script),
                "--workers", str(self.cores), "--timeout", repr(self.request_timeout_s)]

    def _synthetic_args(self, model: SyntheticModel) -> list[str]:
        from rightsizer.serving.synthetic import cli_args

        # ``count`` instances behind one endpoint serve ``count`` times the slots.
        scaled = model.model_copy(update={
            "slots": model.slots * self.spec.count,
            "queue": model.queue * self.spec.count,
        })
        return cli_args(scaled)

    def _ready(self) -> tuple[ServingPlan, Path]:
        assert self._serving is not None, "deploy() prepares the model first"
        return self._serving

    def _environment(self, port: int) -> dict[str, str]:
        env = dict(os.environ)
        if isinstance(self.model, LocalModel):
            env.update(self.model.environment)
            env.update(self._sagemaker_environment(port))
        # The server imports this same rightsizer, installed or not.
        package_root = str(Path(rightsizer.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _sagemaker_environment(self, port: int) -> dict[str, str]:
        """What the framework containers set; the paths are the local ones."""
        serving, _python = self._ready()
        return {
            "SM_MODEL_DIR": str(serving.root),
            "SAGEMAKER_PROGRAM": serving.program,
            "SAGEMAKER_SUBMIT_DIRECTORY": str(serving.code_dir),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(self.cores),
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": f"{self.request_timeout_s:g}",
            "SM_NUM_CPUS": str(self.cores),
            "SM_NUM_GPUS": "0",
        }

    def _open_log(self) -> IO[bytes]:
        if self._log is not None:
            return self._log
        # Kept open for the server's lifetime; delete() closes it.
        if self.log_dir is None:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_dir / f"endpoint-{self.spec.instance_type}.log", "a+b")  # noqa: SIM115
        return self._log

    def _start(self, port: int) -> None:
        log = self._open_log()
        log.seek(0, os.SEEK_END)
        self._log_start = log.tell()
        self._port = port
        self._proc = subprocess.Popen(
            self.command(port), env=self._environment(port), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        _LIVE[id(self)] = self

    def _wait_ready(self, deadline: float, timeout_s: float) -> None:
        proc, port = self._proc, self._port
        assert proc is not None and port is not None
        while True:
            code = proc.poll()
            if code == EXIT_PORT_IN_USE:
                raise _PortTaken()
            if code is not None:
                raise DeployError(
                    f"{self.spec.instance_type}: the server exited with status {code} before "
                    f"it was ready. Its last output:\n{self.output_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeployError(
                    f"{self.spec.instance_type}: /ping did not answer 200 within {timeout_s:g} s."
                    f" The server's last output:\n{self.output_tail()}"
                )
            if _ping(port, min(2.0, remaining)):
                return
            time.sleep(0.05)

    def output_tail(self, max_bytes: int = TAIL_BYTES) -> str:
        """The end of what the current (or last) server process wrote."""
        if self._log is None:
            return ""
        self._log.flush()
        end = os.fstat(self._log.fileno()).st_size
        start = max(self._log_start, end - max_bytes)
        data = os.pread(self._log.fileno(), end - start, start)
        return data.decode(errors="replace").strip()


def describe_exit(returncode: int) -> str:
    """``Popen.returncode`` in words: "exited with status 1", "was killed by SIGKILL (...)"."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name} (exit status {returncode})"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _ping(port: int, timeout_s: float) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
