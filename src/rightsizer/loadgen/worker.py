"""One load-generator process, driven command by command over a pipe by the parent.

Runs only in a child process (see ``processes.py``): importing Locust monkey-patches the
interpreter with gevent, which the parent (CLI, pipeline threads) must not suffer, so
``locust_driver`` is imported here, inside the child, and nowhere else. The commands and
replies are the types in ``messages.py``; ``Shutdown`` ends the loop.
"""

from __future__ import annotations

import signal
import traceback
from multiprocessing.connection import Connection

from rightsizer.loadgen.messages import Failed, Ready, Shutdown, WorkerConfig


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from rightsizer.loadgen.locust_driver import Driver  # patches with gevent

        driver = Driver(config)
    except Exception as exc:
        conn.send(Failed(f"load generator failed to start: {exc}"))
        conn.close()
        return
    conn.send(Ready())
    try:
        while not isinstance(command := driver.wait_for_command(conn), Shutdown):
            try:
                conn.send(driver.handle(command))
            except Exception as exc:
                conn.send(Failed(str(exc), traceback.format_exc()))
    finally:
        conn.send(driver.close())
        conn.close()
