"""Shared helpers for the benchmark scripts: machine facts and docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Taken at import, before a benchmark pins itself to one core.
NPROC = len(os.sched_getaffinity(0))
DOC = ROOT / "docs" / "benchmarks.md"

HEADER = """# Benchmarks of the load engine

Run from the repository root (each prints its table and rewrites its own section below):

    .venv/bin/python benchmarks/capacity_accuracy.py    # accuracy, search time, vs. legacy
    .venv/bin/python benchmarks/loadgen_throughput.py   # load-generator ceiling, plain + SigV4
    .venv/bin/python benchmarks/slow_endpoints.py       # accuracy on 0.5-5 s requests (issue 12)
    .venv/bin/python benchmarks/generative_endpoint.py  # the local LLM-shaped endpoint's shape

`--quick` runs a reduced set and only prints (a smoke check: it does not touch this file).

These run on a shared 2-core machine: the load generator, the server under test and, at times,
other engineers' test suites compete for the same two cores. Figures are from one run each,
not averages; treat differences of a few percent as noise.
"""


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores (`nproc`: {NPROC}), {cpu}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def command() -> str:
    argv = [".venv/bin/python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]
    return " ".join(shlex.quote(a) for a in argv)


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"- machine: {machine()}\n- date: {stamp}\n- command: `{command()}`\n\n"
        f"{body.strip()}\n<!-- END {name} -->"
    )
    pattern = re.compile(rf"<!-- BEGIN {name} -->.*?<!-- END {name} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
