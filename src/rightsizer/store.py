"""The results layout, on a local folder or on S3 (the same keys on both).

runs/<run_id>/input.json
runs/<run_id>/<instance_type>/summary.json   (+ Locust's CSVs beside it)
runs/<run_id>/recommendation.json
runs/<run_id>/prices.json                    (USD per instance-hour the recommendation used)
runs/<run_id>/report.html
runs/<run_id>/since_last_run.json            (the comparison with the run before, if any)
runs/<run_id>/what-if/min-<A>-max-<B>/       (``rightsizer report --min-rps A --max-rps B``)

A results root (a folder or ``s3://bucket[/prefix]``) holds many runs; ``open_results`` lists them.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rightsizer.s3 import S3ReadError, read_s3, split_s3_uri
from rightsizer.summary import TypeSummary

INPUT = "input.json"
SUMMARY = "summary.json"
RECOMMENDATION = "recommendation.json"
REPORT = "report.html"
PRICES = "prices.json"
SINCE_LAST_RUN = "since_last_run.json"
WHAT_IF = "what-if"


def new_run_id(name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{name}-{stamp}-{secrets.token_hex(3)}"


class RunStore(Protocol):
    """One run's folder. Keys are relative to ``runs/<run_id>/``."""

    run_id: str

    def write_bytes(self, key: str, data: bytes, content_type: str = ...) -> str: ...
    def read_bytes(self, key: str) -> bytes: ...
    def list_keys(self) -> list[str]: ...
    def uri(self, key: str = "") -> str: ...


def write_json(store: RunStore, key: str, obj: Any) -> str:
    return store.write_bytes(key, json.dumps(obj, indent=2).encode(), "application/json")


def read_json(store: RunStore, key: str) -> Any:
    return json.loads(store.read_bytes(key))


def read_optional(store: RunStore, key: str) -> bytes | None:
    """The object's bytes, or None when the run has no such key (not yet written, or never)."""
    try:
        return store.read_bytes(key)
    except FileNotFoundError:
        return None
    except S3ReadError as exc:
        if exc.code == "NoSuchKey":
            return None
        raise


def write_summary(store: RunStore, summary: TypeSummary) -> str:
    return store.write_bytes(
        f"{summary.instance_type}/{SUMMARY}",
        summary.model_dump_json(indent=2).encode(),
        "application/json",
    )


def read_summaries(store: RunStore) -> list[TypeSummary]:
    keys = sorted(k for k in store.list_keys() if k.count("/") == 1 and k.endswith("/" + SUMMARY))
    return [TypeSummary.model_validate_json(store.read_bytes(k)) for k in keys]


class SubStore:
    """A folder inside a run (a what-if): its own files, under the run's id."""

    def __init__(self, parent: RunStore, prefix: str) -> None:
        self.run_id = parent.run_id
        self.parent = parent
        self.prefix = prefix.strip("/") + "/"

    def write_bytes(self, key: str, data: bytes, content_type: str = "") -> str:
        return self.parent.write_bytes(self.prefix + key, data, content_type)

    def read_bytes(self, key: str) -> bytes:
        return self.parent.read_bytes(self.prefix + key)

    def list_keys(self) -> list[str]:
        keys = self.parent.list_keys()
        return [k[len(self.prefix) :] for k in keys if k.startswith(self.prefix)]

    def uri(self, key: str = "") -> str:
        return self.parent.uri(self.prefix + key)


class Results(Protocol):
    """A results root: the runs it holds, by id."""

    def run_ids(self) -> list[str]: ...
    def run(self, run_id: str) -> RunStore: ...


class LocalResults:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_ids(self) -> list[str]:
        runs = self.root / "runs"
        if not runs.is_dir():
            return []
        return sorted(p.name for p in runs.iterdir() if (p / INPUT).is_file())

    def run(self, run_id: str) -> RunStore:
        return LocalRunStore(self.root, run_id)


def _runs_prefix(results_uri: str) -> tuple[str, str]:
    """``(bucket, key prefix of runs/)`` for a results root ``s3://bucket[/base]``."""
    bucket, key = split_s3_uri(results_uri)
    base = key.strip("/")
    return bucket, f"{base}/runs/" if base else "runs/"


class S3Results:
    def __init__(self, results_uri: str, s3_client: Any = None) -> None:
        import boto3

        self.results_uri = results_uri.rstrip("/")
        self.bucket, self.prefix = _runs_prefix(self.results_uri)
        self.s3 = s3_client or boto3.client("s3")

    def run_ids(self) -> list[str]:
        """Every ``runs/<id>/`` folder: one delimited listing, paged (1,000 per page)."""
        ids: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
        ):
            ids.extend(p["Prefix"][len(self.prefix) :].rstrip("/")
                       for p in page.get("CommonPrefixes", []))
        return sorted(ids)

    def run(self, run_id: str) -> RunStore:
        return S3RunStore(self.results_uri, run_id, self.s3)


class LocalRunStore:
    def __init__(self, root: str | Path, run_id: str) -> None:
        self.run_id = run_id
        self.path = Path(root) / "runs" / run_id

    @classmethod
    def open(cls, run_dir: str | Path) -> LocalRunStore:
        """Open an existing ``.../runs/<run_id>`` folder."""
        run_dir = Path(run_dir)
        if not (run_dir / INPUT).is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder: it has no {INPUT}")
        return cls(run_dir.parent.parent, run_dir.name)

    def write_bytes(self, key: str, data: bytes, content_type: str = "") -> str:
        target = self.path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader (or a crash) never sees half a file.
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return str(target)

    def read_bytes(self, key: str) -> bytes:
        return (self.path / key).read_bytes()

    def list_keys(self) -> list[str]:
        if not self.path.exists():
            return []
        return sorted(
            p.relative_to(self.path).as_posix()
            for p in self.path.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def uri(self, key: str = "") -> str:
        return str(self.path / key)


class S3RunStore:
    def __init__(self, results_uri: str, run_id: str, s3_client: Any = None) -> None:
        import boto3

        self.run_id = run_id
        self.bucket, runs = _runs_prefix(results_uri)
        self.prefix = f"{runs}{run_id}/"
        base = runs.removesuffix("runs/").rstrip("/")
        self.results_uri = f"s3://{self.bucket}/{base}" if base else f"s3://{self.bucket}"
        self.s3 = s3_client or boto3.client("s3")

    @classmethod
    def open(cls, run_uri: str, s3_client: Any = None) -> S3RunStore:
        """Open an existing ``s3://bucket/[base/]runs/<run_id>/`` run."""
        try:
            bucket, key = split_s3_uri(run_uri)
        except ValueError:
            bucket, key = "", ""
        parts = key.strip("/").split("/")
        if len(parts) < 2 or parts[-2] != "runs":
            raise ValueError(f"{run_uri} is not a run: expected s3://bucket/runs/<run id>/")
        base = "/".join(parts[:-2])
        store = cls(f"s3://{bucket}/{base}", parts[-1], s3_client)
        if INPUT not in store.list_keys():
            raise FileNotFoundError(f"{run_uri} is not a run folder: it has no {INPUT}")
        return store

    def write_bytes(self, key: str, data: bytes, content_type: str = "") -> str:
        extra = {"ContentType": content_type} if content_type else {}
        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, **extra)
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        return read_s3(self.s3, self.uri(key))

    def list_keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            keys.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents", []))
        return sorted(keys)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"


def open_store(results: str, run_id: str, s3_client: Any = None) -> RunStore:
    if results.startswith("s3://"):
        return S3RunStore(results, run_id, s3_client)
    return LocalRunStore(results, run_id)


def open_results(results: str | Path, s3_client: Any = None) -> Results:
    """A results root: a folder (``results`` or ``results/runs``) or ``s3://bucket[/prefix]``."""
    text = str(results)
    if text.startswith("s3://"):
        return S3Results(text.rstrip("/").removesuffix("/runs"), s3_client)
    path = Path(results)
    return LocalResults(path.parent if path.name == "runs" else path)


def results_of(store: RunStore) -> Results | None:
    """The results root a run's folder is in (None for a folder inside a run)."""
    if isinstance(store, LocalRunStore):
        return LocalResults(store.path.parent.parent)
    if isinstance(store, S3RunStore):
        return S3Results(store.results_uri, store.s3)
    return None


def open_run(run: str | Path, s3_client: Any = None) -> RunStore:
    """An existing run: a local ``.../runs/<run_id>`` folder or ``s3://bucket/runs/<run_id>/``."""
    if str(run).startswith("s3://"):
        return S3RunStore.open(str(run), s3_client)
    return LocalRunStore.open(run)
