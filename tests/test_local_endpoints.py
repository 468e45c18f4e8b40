"""LocalEndpoint: deploy, url, delete, failure paths, and no process left behind on any path."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from rightsizer.endpoints import local
from rightsizer.endpoints.local import DeployError, LocalEndpoint, stop_all
from rightsizer.schema import InstanceTypeSpec, LocalModel, SyntheticModel

REPO = Path(__file__).resolve().parent.parent
ONE_CPU = InstanceTypeSpec(instance_type="local.1cpu")
TWO_CPU = InstanceTypeSpec(instance_type="local.2cpu")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def wait_group_gone(pgid: int, timeout_s: float = 8.0) -> None:
    deadline = time.monotonic() + timeout_s
    while members := group_members(pgid):
        assert time.monotonic() < deadline, f"still running in group {pgid}: {members}"
        time.sleep(0.05)


def ping(url: str) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", "/ping")
        return connection.getresponse().status
    finally:
        connection.close()


def model_folder(tmp_path: Path, source: str) -> LocalModel:
    (tmp_path / "inference.py").write_text(textwrap.dedent(source))
    return LocalModel(path=str(tmp_path))


@pytest.fixture
def started_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every server LocalEndpoint starts, even when deploy() fails."""
    pids: list[int] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(local.subprocess, "Popen", recording_popen)
    return pids


def test_deploy_url_delete() -> None:
    endpoint = LocalEndpoint(SyntheticModel(service_ms=1), ONE_CPU, model_root=REPO)
    with pytest.raises(RuntimeError, match="deploy"):
        _ = endpoint.url
    url = endpoint.deploy(timeout_s=30)
    try:
        assert url == endpoint.url and url.startswith("http://127.0.0.1:")
        assert endpoint.is_alive() and ping(url) == 200
        pgid = endpoint.pid
        assert pgid is not None and os.getpgid(pgid) == pgid  # its own process group
    finally:
        endpoint.delete()
    assert not endpoint.is_alive() and endpoint.pid is None
    wait_group_gone(pgid, timeout_s=1)
    endpoint.delete()  # idempotent
    with pytest.raises(RuntimeError):
        _ = endpoint.url


def test_delete_before_deploy_is_harmless() -> None:
    endpoint = LocalEndpoint(SyntheticModel(), ONE_CPU, model_root=REPO)
    endpoint.delete()
    endpoint.delete()


def test_container_endpoint_leaves_no_worker_behind(tmp_path: Path) -> None:
    model = model_folder(tmp_path, "def model_fn(model_dir):\n    return None\n")
    with LocalEndpoint(model, TWO_CPU, model_root=tmp_path, log_dir=tmp_path / "logs") as ep:
        ep.deploy(timeout_s=60)
        pgid = ep.pid
        assert pgid is not None
        deadline = time.monotonic() + 5
        while len(group_members(pgid)) < 3:  # front + 2 workers
            assert time.monotonic() < deadline
            time.sleep(0.05)
    wait_group_gone(pgid, timeout_s=1)
    assert "serves on core" in (tmp_path / "logs" / "endpoint-local.2cpu.log").read_text()


@pytest.mark.parametrize("logs", [False, True])
def test_model_fn_error_is_a_deploy_error(
    tmp_path: Path, started_pids: list[int], logs: bool
) -> None:
    model = model_folder(tmp_path, """
        def model_fn(model_dir):
            raise RuntimeError("the weights file is corrupt")
    """)
    log_dir = tmp_path / "logs" if logs else None
    endpoint = LocalEndpoint(model, ONE_CPU, model_root=tmp_path, log_dir=log_dir)
    with pytest.raises(DeployError, match="the weights file is corrupt"):
        endpoint.deploy(timeout_s=60)
    assert not endpoint.is_alive()
    assert started_pids
    for pid in started_pids:
        wait_group_gone(pid, timeout_s=1)


def test_deploy_timeout_stops_the_server(tmp_path: Path, started_pids: list[int]) -> None:
    model = model_folder(tmp_path, """
        import time

        def model_fn(model_dir):
            print("loading a very large model", flush=True)
            time.sleep(60)
    """)
    endpoint = LocalEndpoint(model, ONE_CPU, model_root=tmp_path)
    start = time.monotonic()
    with pytest.raises(DeployError, match=r"within 1 s(?s:.)*loading a very large model"):
        endpoint.deploy(timeout_s=1)
    assert time.monotonic() - start < 8
    for pid in started_pids:
        wait_group_gone(pid, timeout_s=1)


def test_missing_inference_py(tmp_path: Path, started_pids: list[int]) -> None:
    endpoint = LocalEndpoint(LocalModel(path="nowhere"), ONE_CPU, model_root=tmp_path)
    with pytest.raises(DeployError, match=r"inference\.py"):
        endpoint.deploy()
    assert started_pids == []


def test_rejects_sagemaker_types() -> None:
    with pytest.raises(ValueError, match="local profile"):
        LocalEndpoint(SyntheticModel(), InstanceTypeSpec(instance_type="ml.c5.xlarge"),
                      model_root=REPO)


def test_a_taken_port_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = local._free_port
        monkeypatch.setattr(local, "_free_port", lambda: next(ports, None) or real_free_port())
        with LocalEndpoint(SyntheticModel(), ONE_CPU, model_root=REPO) as endpoint:
            endpoint.deploy(timeout_s=30)
            assert urlsplit(endpoint.url).port != taken
            assert ping(endpoint.url) == 200


def test_stop_all_deletes_every_endpoint() -> None:
    endpoints = [LocalEndpoint(SyntheticModel(), ONE_CPU, model_root=REPO) for _ in range(2)]
    for endpoint in endpoints:
        endpoint.deploy(timeout_s=30)
    pgids = [endpoint.pid for endpoint in endpoints]
    stop_all()
    for endpoint, pgid in zip(endpoints, pgids, strict=True):
        assert not endpoint.is_alive() and pgid is not None
        wait_group_gone(pgid, timeout_s=1)


LAUNCHER = """
import sys
from pathlib import Path
from rightsizer.endpoints.local import LocalEndpoint
from rightsizer.schema import InstanceTypeSpec, LocalModel, SyntheticModel

how, model_dir = sys.argv[1], sys.argv[2]
model = LocalModel(path=model_dir) if model_dir else SyntheticModel()
endpoint = LocalEndpoint(model, InstanceTypeSpec(instance_type="local.2cpu"), Path("."))
endpoint.deploy(timeout_s=30)
print(endpoint.pid, flush=True)
if how == "hang":
    import time
    time.sleep(60)
# "exit": leave without delete(); the atexit hook must stop the server
"""


@pytest.mark.parametrize(("how", "kind"), [("exit", "synthetic"), ("sigkill", "synthetic"),
                                           ("sigkill", "container")])
def test_no_orphan_when_the_launcher_goes(how: str, kind: str, tmp_path: Path) -> None:
    model_dir = ""
    if kind == "container":
        model_folder(tmp_path, "def model_fn(model_dir):\n    return None\n")
        model_dir = str(tmp_path)
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "exit" if how == "exit" else "hang", model_dir],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert launcher.stdout is not None
        server_pgid = int(launcher.stdout.readline())
        assert group_members(server_pgid)
        if how == "sigkill":
            launcher.send_signal(signal.SIGKILL)  # no atexit: the server notices by itself
        launcher.wait(timeout=15)
        wait_group_gone(server_pgid)
    finally:
        launcher.kill()
        launcher.wait()
