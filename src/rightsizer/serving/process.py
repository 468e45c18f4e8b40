"""Process plumbing shared by the servers: CPU pinning, port checks, exiting with the parent."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
# Exit status telling the launcher to retry on another port (errno EADDRINUSE on Linux).
EXIT_PORT_IN_USE = 98


def parse_cpus(text: str | None, count: int) -> list[int]:
    """``"0,2-3"`` -> ``[0, 2, 3]``; ``None`` -> the first ``count`` cores."""
    if not text:
        return list(range(count))
    cpus: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        start = int(first)
        cpus.extend(range(start, int(last) + 1) if last else [start])
    if not cpus or min(cpus) < 0:
        raise ValueError(f"--cpus {text!r}: give core numbers such as 0,1 or 0-3")
    return cpus


def core_for(index: int, cpus: list[int]) -> int:
    """The core for worker ``index``: round-robin over ``cpus``, folded onto cores we may use.

    A profile may ask for more cores than this machine (or container) has; workers then share
    the available cores instead of failing.
    """
    available = sorted(os.sched_getaffinity(0))
    wanted = cpus[index % len(cpus)]
    return wanted if wanted in available else available[wanted % len(available)]


def pin(cores: set[int]) -> None:
    os.sched_setaffinity(0, cores)


def limit_native_threads() -> None:
    """One compute thread per process: a worker stands for one core.

    Must run before numpy/torch are imported. Also keeps forking safe after a model was loaded
    (an OpenMP pool started in the parent deadlocks forked children).
    """
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ.setdefault(name, "1")


def exit_if_port_taken(port: int) -> None:
    """Fail fast (status 98) rather than let the server retry binding for seconds."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((HOST, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"port {port} is in use", file=sys.stderr, flush=True)
            sys.exit(EXIT_PORT_IN_USE)
        raise
    finally:
        probe.close()


def exit_with_parent(parent_pid: int | None, interval_s: float = 0.5) -> None:
    """SIGTERM ourselves when the launching process dies, even by SIGKILL (no orphans).

    The launcher puts us in a new session, so its death sends us nothing; a re-parented
    process sees ``getppid()`` change.
    """
    if not parent_pid:
        return
    my_pid = os.getpid()

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os.kill(my_pid, signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
