"""A local model's files: a folder as it is, or a ``model.tar.gz`` unpacked once into a cache.

A tarball (a local file, or an ``s3://`` URI read with the caller's credentials) is unpacked
into ``<cache>/models/<sha256 of the tarball>/``, which is what SageMaker's containers see as
``/opt/ml/model``. Unpacking goes to a temporary folder that is renamed into place only once
complete, so the cache never holds a half-made model; a lock per key makes concurrent
deployments of one model unpack it once.

The cache is ``$RIGHTSIZER_CACHE_DIR``, else ``$XDG_CACHE_HOME/rightsizer``, else
``~/.cache/rightsizer``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from rightsizer.s3 import S3ReadError, read_s3

CACHE_ENV = "RIGHTSIZER_CACHE_DIR"
TARBALL_SUFFIXES = (".tar.gz", ".tgz")
_CHUNK = 1 << 20


class ArtifactError(RuntimeError):
    """The model's files cannot be made ready; the message says which and why."""


def cache_root() -> Path:
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rightsizer"


def is_tarball(path: str) -> bool:
    return path.lower().endswith(TARBALL_SUFFIXES)


def is_s3(path: str) -> bool:
    return path.startswith("s3://")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def locked(name: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``name.lock`` (between processes and threads alike)."""
    name.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{name}.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def build_atomically(final: Path, build: Callable[[Path], None]) -> Path:
    """``final``, made by ``build(temporary folder)`` and renamed into place unless it exists.

    On any failure (an exception, Ctrl-C) the temporary folder is removed: nothing half-made
    stays in the cache.
    """
    with locked(final):
        if final.is_dir():
            return final
        scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
        try:
            build(scratch)
            scratch.rename(final)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return final


def model_root(path: str, base_dir: Path, s3_client: Callable[[], Any] | None = None) -> Path:
    """The folder that serves as ``/opt/ml/model`` for the model at ``path``.

    ``path`` is a folder or a ``.tar.gz`` relative to ``base_dir`` (or absolute), or an
    ``s3://`` URI of a ``model.tar.gz``; ``s3_client`` makes the S3 client (default boto3's).
    """
    if is_s3(path):
        return _unpacked_from_s3(path, s3_client or _default_s3_client)
    local = (base_dir / path).resolve()
    if is_tarball(path):
        if not local.is_file():
            raise ArtifactError(f"{local} does not exist: model.path names a model.tar.gz")
        return unpacked(local)
    if not local.is_dir():
        raise ArtifactError(f"{local} is not a folder: model.path names a model folder (with "
                            "inference.py or code/inference.py) or a model.tar.gz")
    return local


def unpacked(tarball: Path) -> Path:
    """The cached unpacked copy of ``tarball``, made now if this content was never unpacked."""
    final = cache_root() / "models" / sha256_of(tarball)
    return build_atomically(final, lambda scratch: extract(tarball, scratch, str(tarball)))


def extract(tarball: Path, into: Path, name: str) -> None:
    """Unpack safely: no absolute paths, no '..', no links leading outside, no devices."""
    try:
        with tarfile.open(tarball, "r:*") as archive:
            for member in archive.getmembers():
                refuse_unsafe(member, name)
            # "data" also refuses links that point outside and special files.
            archive.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ArtifactError(f"cannot unpack {name}: {exc}") from exc


def refuse_unsafe(member: tarfile.TarInfo, name: str) -> None:
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        raise ArtifactError(
            f"{name} holds {member.name!r}, a path outside the model folder: refused (a "
            "model.tar.gz holds paths relative to the model root, such as code/inference.py)")


def _unpacked_from_s3(uri: str, s3_client: Callable[[], Any]) -> Path:
    downloads = cache_root() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    try:
        data = read_s3(s3_client(), uri)
    except S3ReadError as exc:
        raise ArtifactError(f"the model's {exc}") from exc
    # A temporary file: the unpacked folder, keyed by content, is what the cache keeps.
    with tempfile.NamedTemporaryFile(dir=downloads, suffix=".tar.gz") as file:
        file.write(data)
        file.flush()
        final = cache_root() / "models" / hashlib.sha256(data).hexdigest()
        return build_atomically(final, lambda scratch: extract(Path(file.name), scratch, uri))


def _default_s3_client() -> Any:
    import boto3

    return boto3.client("s3")
