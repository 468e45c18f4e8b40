"""One load-generator process, driven step by step over a pipe by the parent.

Runs only in a child process (see ``processes.py``): importing Locust monkey-patches the
interpreter with gevent, which the parent (CLI, pipeline threads) must not suffer.
Commands are dicts with an ``op``: ``warm``, ``step``, ``legacy`` or ``stop``.
"""

from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from rightsizer.loadgen.target import Target
from rightsizer.payloads import LoadedPayload


@dataclass(frozen=True)
class WorkerConfig:
    target: Target
    payloads: list[LoadedPayload]
    request_timeout: float
    csv_base: str | None  # Locust's CSVs: <csv_base>_stats.csv, _stats_history.csv, ...
    seed: int = 0


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from rightsizer.loadgen.locust_driver import Driver  # patches with gevent

        driver = Driver(config)
    except Exception as exc:
        conn.send({"ok": False, "error": f"load generator failed to start: {exc}"})
        conn.close()
        return
    conn.send({"ok": True, "ready": True})
    try:
        while True:
            msg = driver.wait_for_message(conn)
            if msg["op"] == "stop":
                break
            try:
                conn.send({"ok": True, **driver.handle(msg)})
            except Exception as exc:
                conn.send({"ok": False, "error": str(exc), "trace": traceback.format_exc()})
    finally:
        summary: dict[str, Any] = driver.close()
        conn.send({"ok": True, "stopped": True, **summary})
        conn.close()
