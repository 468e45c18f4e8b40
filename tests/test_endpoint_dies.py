"""A local endpoint that dies mid-run: its search ends with the reason, the run goes on.

Real server processes, real HTTP, real Locust; the only hook records each server's pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

import pytest

from rightsizer.endpoints import local
from rightsizer.endpoints.local import LocalEndpoint, describe_exit
from rightsizer.pipeline import run_benchmark
from rightsizer.schema import BenchmarkInput, InstanceTypeSpec, SyntheticModel

# 2 slots x 20 ms = 100 rps; max_rps 40 ends a healthy search after two steps (rate limit).
LOAD = {
    "step_seconds": 2,
    "warmup_seconds": 0.5,
    "start_rps": 20,
    "max_rps": 40,
    "precision": 0.1,
    "max_steps": 4,
}
DOOMED, SURVIVOR = "local.1cpu", "local.2cpu"  # the cheaper one dies


@pytest.fixture
def server_pids(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The pid (= process group) of every endpoint server the run starts, by instance type."""
    pids: dict[str, list[int]] = {}
    original = local.LocalEndpoint._start

    def start(self: local.LocalEndpoint, port: int) -> None:
        original(self, port)
        assert self.pid is not None
        pids.setdefault(self.spec.instance_type, []).append(self.pid)

    monkeypatch.setattr(local.LocalEndpoint, "_start", start)
    return pids


def test_an_endpoint_killed_during_its_search_fails_that_type_and_the_run_goes_on(
    tmp_path: Path, server_pids: dict[str, list[int]]
) -> None:
    spec = BenchmarkInput.model_validate(
        {
            "name": "dies",
            "model": {"kind": "synthetic", "slots": 2, "service_ms": 20},
            "instance_types": [DOOMED, SURVIVOR],
            "payloads": [{"body": "{}", "content_type": "application/json"}],
            "traffic": {"min_rps": 10, "max_rps": 100},
            "load": LOAD,
            "prices": {DOOMED: 0.1, SURVIVOR: 0.2},
            "results": str(tmp_path / "results"),
        }
    )
    killer: list[threading.Thread] = []

    def kill_soon() -> None:
        threading.Event().wait(0.5)  # into the step (it starts 0.3 s after it is announced)
        os.kill(server_pids[DOOMED][-1], signal.SIGKILL)

    def progress(name: str, message: str) -> None:
        if name != DOOMED:
            return
        if message.startswith("step 1: offering"):
            killer.append(threading.Thread(target=kill_soon, daemon=True))
            killer[0].start()
        elif message.startswith("step 2: offering") and killer:
            # A slow machine may not have killed it during step 1: then during step 2.
            killer[0].join()

    outcome = run_benchmark(spec, tmp_path, progress=progress)
    assert killer, "the doomed endpoint never started its first step"

    dead, alive = outcome.summaries
    assert (dead.instance_type, alive.instance_type) == (DOOMED, SURVIVOR)
    assert dead.status == "failed" and dead.failed_stage == "load_test"
    reason = dead.reason or ""
    assert "the endpoint died during step" in reason, reason
    assert "SIGKILL" in reason, reason
    # No step against the dead server after the one it died in; earlier steps are kept.
    match = re.search(r"died during step (\d+) \(([\d.]+) rps\)", reason)
    assert match, reason
    assert len(dead.steps) == int(match.group(1))
    assert dead.steps[-1].target_rps == pytest.approx(float(match.group(2)), abs=0.05)

    assert alive.status == "succeeded" and alive.max_sustainable_rps > 0
    assert outcome.recommendation.recommended is not None
    assert outcome.recommendation.recommended.instance_type == SURVIVOR
    rejected = {o.instance_type: o for o in outcome.recommendation.options}[DOOMED]
    assert rejected.status == "not_viable"
    assert any("endpoint died" in r for r in rejected.reasons)

    run = Path(outcome.store.uri())
    on_disk = json.loads((run / DOOMED / "summary.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["reason"] == reason
    assert json.loads((run / "recommendation.json").read_text())["recommended"][
        "instance_type"
    ] == SURVIVOR
    assert "endpoint died" in (run / "report.html").read_text()

    assert set(server_pids) == {DOOMED, SURVIVOR}
    assert not local._LIVE
    for pid in (p for pids in server_pids.values() for p in pids):
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_health_tells_a_running_a_hung_and_a_killed_server_apart(tmp_path: Path) -> None:
    model = SyntheticModel(slots=1, service_ms=5)
    with LocalEndpoint(model, InstanceTypeSpec(instance_type="local.1cpu"), tmp_path) as endpoint:
        endpoint.deploy()
        pid = endpoint.pid
        assert pid is not None
        assert endpoint.health() is None
        os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
        try:
            hung = endpoint.health(ping_timeout_s=0.5, attempts=2)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert hung is not None and "did not answer GET /ping" in hung
        os.kill(pid, signal.SIGKILL)
        dead = endpoint.health(ping_timeout_s=0.5, attempts=2)
        assert dead is not None and "killed by SIGKILL" in dead
    assert endpoint.health() is not None  # deleted
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_exit_statuses_in_words() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL (exit status -9)"
