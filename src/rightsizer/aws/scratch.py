"""The load generator's scratch folder on Fargate, and a clear error when it cannot be written.

The task runs as a non-root user on a read-only root filesystem; its only writable place is
the task volume mounted at /tmp (``TMPDIR`` when set). Fargate creates that mount root-owned
with mode 0755 unless the image declares ``VOLUME ["/tmp"]`` (see loadgen_container/Dockerfile).

The folder is taken strictly: Python's ``tempfile`` would silently try other folders, and
Locust's CSVs would then fail deep inside a worker with a bare ``PermissionError``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path


class ScratchNotWritable(RuntimeError):
    """The scratch folder cannot be written; the message names it, its owner/mode and the uid."""


def scratch_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("TMPDIR") or "/tmp")


def describe_folder(path: Path) -> str:
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot stat it: {exc.strerror}"
    return f"owner {info.st_uid}:{info.st_gid}, mode {stat.S_IMODE(info.st_mode):04o}"


def ensure_writable(path: Path) -> None:
    """Create and remove a file in ``path``, or raise ScratchNotWritable saying why."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".rightsizer-probe-", dir=path)
    except OSError as exc:
        raise ScratchNotWritable(
            f"the scratch folder {path} is not writable by uid {os.getuid()} "
            f"({describe_folder(path)}; {exc.strerror}): the image must create it writable by "
            f'that user and declare VOLUME ["{path}"] (loadgen_container/Dockerfile)'
        ) from None
    os.close(handle)
    os.unlink(probe)
