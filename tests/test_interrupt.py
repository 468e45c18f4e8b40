"""Ctrl-C and SIGTERM during a local run: every endpoint stops, finished results stay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rightsizer.cli import main


def start_run(tmp_path: Path) -> subprocess.Popen[str]:
    spec = {
        "name": "interrupt",
        "model": {"kind": "synthetic", "slots": 2, "service_ms": 20},
        "instance_types": ["local.1cpu", "local.2cpu"],
        "payloads": [{"body": "{}", "content_type": "application/json"}],
        "traffic": {"min_rps": 10, "max_rps": 50},
        "load": {"step_seconds": 3, "warmup_seconds": 1, "precision": 0.1},
        "prices": {"local.1cpu": 0.1, "local.2cpu": 0.2},
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "input.json"
    path.write_text(json.dumps(spec))
    return subprocess.Popen(
        [sys.executable, "-m", "rightsizer.cli", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def server_pids(run: subprocess.Popen[str]) -> set[int]:
    """Endpoint servers started by the run (they lead their own process groups)."""
    out = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout
    return {
        int(line.split()[0])
        for line in out.splitlines()
        if "rightsizer.serving" in line and f"--parent-pid {run.pid}" in line
    }


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_stops_endpoints_and_keeps_results(
    tmp_path: Path, signum: signal.Signals
) -> None:
    run = start_run(tmp_path)
    try:
        check_interrupted_run(run, tmp_path, signum)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def check_interrupted_run(
    run: subprocess.Popen[str], tmp_path: Path, signum: signal.Signals
) -> None:
    assert run.stdout is not None
    seen: list[str] = []
    pids: set[int] = set()
    for line in run.stdout:  # wait until the second type is under load
        seen.append(line)
        if "local.2cpu" in line and "step 1" in line:
            pids = server_pids(run)
            break
    else:
        pytest.fail("the run ended before the second type started:\n" + "".join(seen))
    assert pids, "expected a running endpoint server"
    run.send_signal(signum)
    rest, _ = run.communicate(timeout=60)
    assert run.returncode == 130, rest
    time.sleep(0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    run_dir = next((tmp_path / "results" / "runs").iterdir())
    first = json.loads((run_dir / "local.1cpu" / "summary.json").read_text())
    assert first["status"] == "succeeded" and first["max_sustainable_rps"] > 0
    second = json.loads((run_dir / "local.2cpu" / "summary.json").read_text())
    assert second["status"] == "failed" and "interrupted" in second["reason"]
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
