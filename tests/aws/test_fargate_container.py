"""The load-generator container run the way Fargate runs it, without Docker.

The task definition runs the image as uid 10001 on a read-only root filesystem, with an empty
task volume at /tmp and HOME=/tmp. What Fargate puts at /tmp depends on the Dockerfile
(``fargate_tmp_mount``, below). These tests build that folder, then run the real
``loadgen_container/entrypoint.py`` as uid 10001 with HOME and TMPDIR on it, with the real engine
(real Locust worker processes) against a SageMaker-runtime stand-in on 127.0.0.1 and moto's S3
and SageMaker served by ``ThreadedMotoServer`` on loopback.

Nothing else is writable for that uid: the checkout and the virtual environment are root-owned
(checked), and PYTHONDONTWRITEBYTECODE=1 keeps Python from writing caches. (The host's own /tmp
stays world-writable; the task takes its scratch folder strictly from TMPDIR, so Python's
fallback to other folders cannot hide a bad mount.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from loopback import send_whole, serving

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "loadgen_container" / "Dockerfile"
BUCKET = "rightsizer-results-fargate"
RUN_ID = "digits-20261203T090000Z-f4r6a7"
ENDPOINT = "rightsizer-run-c5-xlarge-f4r6a7"
INSTANCE_TYPE = "ml.c5.xlarge"
REGION = "us-east-1"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running the entrypoint as uid 10001 needs root and setpriv (CI runs as root)",
)


# --- the Fargate model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Folder:
    uid: int
    gid: int
    mode: int


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.strip().split(None, 1) for line in joined.splitlines() if line.strip())
    ]


def declared_volumes(dockerfile: str) -> set[str]:
    volumes: set[str] = set()
    for name, args in instructions(dockerfile):
        if name == "VOLUME":
            volumes.update(json.loads(args) if args.startswith("[") else args.split())
    return volumes


def fargate_tmp_mount(dockerfile: str) -> Folder:
    """What Fargate mounts at /tmp for an empty task volume (no host path) there.

    An empty bind mount is created root:root 0755, unless the image declares /tmp with
    ``VOLUME``: then the image's /tmp, contents and permissions, is copied in. The image's /tmp
    counts only where the Dockerfile sets it with ``chmod MODE /tmp`` or ``chown U[:G] /tmp``
    in a RUN (the base image's layers are not modelled).
    """
    mounted = Folder(0, 0, 0o755)
    if "/tmp" not in declared_volumes(dockerfile):
        return mounted
    for name, args in instructions(dockerfile):
        if name != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            words = shlex.split(command)
            if len(words) == 3 and words[2].rstrip("/") == "/tmp" and words[0] == "chmod":
                mounted = Folder(mounted.uid, mounted.gid, int(words[1], 8))
            elif len(words) == 3 and words[2].rstrip("/") == "/tmp" and words[0] == "chown":
                user, _, group = words[1].partition(":")
                mounted = Folder(int(user), int(group or user), mounted.mode)
    return mounted


def task_user(dockerfile: str) -> int:
    users = [args for name, args in instructions(dockerfile) if name == "USER"]
    assert users and users[-1].isdigit(), "the image must name its user by uid"
    return int(users[-1])


def without_tmp_provision(dockerfile: str) -> str:
    """The Dockerfile as it was before the fix: no VOLUME for /tmp, no mode set on it."""
    text = re.sub(r"^VOLUME .*/tmp.*\n", "", dockerfile, flags=re.MULTILINE)
    return re.sub(r" \\\n\s*&& (mkdir -p|chmod \S+) /tmp", "", text)


def test_the_model_reads_the_dockerfile():
    text = DOCKERFILE.read_text()
    assert fargate_tmp_mount(text) == Folder(0, 0, 0o1777)
    assert task_user(text) == 10001
    assert fargate_tmp_mount(without_tmp_provision(text)) == Folder(0, 0, 0o755)
    assert fargate_tmp_mount(text.replace('VOLUME ["/tmp"]', "")) == Folder(0, 0, 0o755)
    owned = 'FROM x\nRUN chown 10001:10001 /tmp && chmod 0700 /tmp\nVOLUME /tmp /data\n'
    assert fargate_tmp_mount(owned) == Folder(10001, 10001, 0o700)


# --- the pieces the container talks to ----------------------------------------------------------


class RuntimeStandIn(BaseHTTPRequestHandler):
    """SageMaker runtime's InvokeEndpoint path, answering every signed request at once."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        RuntimeStandIn.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.path != f"/endpoints/{ENDPOINT}/invocations":
            self.send_error(404)
            return
        send_whole(self, 200, b'{"predictions": [{"class": 3}]}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def runtime_url() -> Iterator[str]:
    RuntimeStandIn.seen = []
    with serving(RuntimeStandIn) as base_url:
        yield base_url


@pytest.fixture
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=url)
    sagemaker.create_model(
        ModelName=ENDPOINT, ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
    )
    sagemaker.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": ENDPOINT, "InitialInstanceCount": 1,
        "InstanceType": INSTANCE_TYPE}])
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    yield url
    server.stop()


@pytest.fixture
def fargate_dir() -> Iterator[Path]:
    """A traversable parent for the mounted folder (pytest's tmp_path is root-only, 0700)."""
    base = Path(tempfile.mkdtemp(prefix="rightsizer-fargate-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def mount(dockerfile: str, parent: Path) -> Path:
    """The folder Fargate would mount at /tmp for this Dockerfile."""
    folder = fargate_tmp_mount(dockerfile)
    path = parent / "tmp"
    path.mkdir()
    os.chown(path, folder.uid, folder.gid)
    path.chmod(folder.mode)
    return path


def as_task_user(uid: int, *command: str) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]


def task_interpreter(uid: int) -> tuple[str, dict[str, str]]:
    """A Python the task user can execute, and the environment that finds the package with it.

    The venv's own interpreter, unless its real binary sits where the uid cannot reach (pyenv
    under a 0700 /root: the load generator's spawned workers would then fail to exec). Then the
    system's Python of the same minor version, with the venv's packages on PYTHONPATH.
    """
    real = os.path.realpath(sys.executable)
    if subprocess.run(as_task_user(uid, "test", "-x", real), check=False).returncode == 0:
        return sys.executable, {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin")
    if system is None:
        pytest.skip(f"uid {uid} cannot execute {real} and there is no system {version}")
    packages = [str(ROOT / "src"), sysconfig.get_paths()["purelib"]]
    return system, {"PYTHONPATH": os.pathsep.join(packages)}


def task_environment(
    scratch: Path, moto_url: str, runtime_url: str, **extra: str
) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": moto_url,
        "RIGHTSIZER_RESULTS_URI": f"s3://{BUCKET}",
        "RIGHTSIZER_RUN_ID": RUN_ID,
        "RIGHTSIZER_REGION": REGION,
        "RIGHTSIZER_RUNTIME_ENDPOINT_URL": runtime_url,
        **extra,
    }


def load_test_environment(scratch: Path, moto_url: str, runtime_url: str) -> dict[str, str]:
    # Tiny settings: warm-up, then two 2 s steps (5 then 10 rps = max_rps), one worker process.
    load = {"step_seconds": 2, "warmup_seconds": 0.5, "start_rps": 5, "max_rps": 10,
            "max_steps": 2, "max_seconds": 10, "request_timeout_seconds": 5}
    return task_environment(
        scratch, moto_url, runtime_url,
        RIGHTSIZER_ENDPOINT_NAME=ENDPOINT,
        RIGHTSIZER_INSTANCE_TYPE=INSTANCE_TYPE,
        RIGHTSIZER_OBJECTIVE=json.dumps({"max_failure_rate": 0.01}),
        RIGHTSIZER_LOAD=json.dumps(load),
        RIGHTSIZER_PAYLOADS=json.dumps([{"body": '{"pixels": [0, 1]}',
                                         "content_type": "application/json"}]),
        RIGHTSIZER_PROCESSES="1",
    )


def run_entrypoint(uid: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    python, python_env = task_interpreter(uid)
    command = as_task_user(uid, python, "loadgen_container/entrypoint.py")
    return subprocess.run(command, cwd=ROOT, env={**env, **python_env}, capture_output=True,
                          text=True, timeout=120, check=False)


def s3_keys(moto_url: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


# --- the tests ----------------------------------------------------------------------------------


def test_the_task_user_can_write_nothing_but_the_mount():
    uid = task_user(DOCKERFILE.read_text())
    python, _ = task_interpreter(uid)
    writable = [ROOT, ROOT / "loadgen_container", ROOT / "src" / "rightsizer",
                Path(sysconfig.get_paths()["purelib"]), Path(python).parent]
    for path in writable:
        probe = subprocess.run(as_task_user(uid, "test", "-w", str(path)), check=False)
        assert probe.returncode != 0, f"uid {uid} can write {path}: the model would be too kind"


def test_a_load_test_runs_on_the_mount_the_dockerfile_provides(fargate_dir, moto_url,
                                                                runtime_url):
    dockerfile = DOCKERFILE.read_text()
    scratch = mount(dockerfile, fargate_dir)
    result = run_entrypoint(task_user(dockerfile),
                            load_test_environment(scratch, moto_url, runtime_url))

    assert result.returncode == 0, result.stderr[-3000:]
    stored = s3_keys(moto_url)
    prefix = f"runs/{RUN_ID}/{INSTANCE_TYPE}/"
    summary = json.loads(stored[prefix + "summary.json"])
    assert summary["status"] == "succeeded", summary
    assert summary["max_sustainable_rps"] == 10 and summary["bottleneck"] == "rate-limit"
    for csv in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"):
        assert stored.get(prefix + csv), f"{csv} missing or empty"
    assert b"Request Count" in stored[prefix + "locust_stats.csv"]
    signed = [auth for path, auth in RuntimeStandIn.seen if path.startswith("/endpoints/")]
    assert signed and all(a.startswith("AWS4-HMAC-SHA256 ") for a in signed)
    assert list(scratch.iterdir()) == []  # the task cleans up after itself


def test_without_the_provision_the_task_fails_naming_the_folder(fargate_dir, moto_url,
                                                                 runtime_url):
    dockerfile = without_tmp_provision(DOCKERFILE.read_text())
    scratch = mount(dockerfile, fargate_dir)
    result = run_entrypoint(task_user(dockerfile),
                            load_test_environment(scratch, moto_url, runtime_url))

    assert result.returncode == 1
    message = f"the scratch folder {scratch} is not writable by uid 10001 (owner 0:0, mode 0755"
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(s3_keys(moto_url)[f"runs/{RUN_ID}/{INSTANCE_TYPE}/summary.json"])
    assert summary["status"] == "failed" and message in summary["reason"]
    assert not RuntimeStandIn.seen  # it stopped before sending any load


def test_preflight_passes_on_the_mount_the_dockerfile_provides(fargate_dir, moto_url,
                                                                runtime_url):
    dockerfile = DOCKERFILE.read_text()
    scratch = mount(dockerfile, fargate_dir)
    env = task_environment(scratch, moto_url, runtime_url, RIGHTSIZER_MODE="preflight")
    result = run_entrypoint(task_user(dockerfile), env)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(s3_keys(moto_url)[f"runs/{RUN_ID}/preflight/loadgen.json"])
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["scratch", "worker", "runtime", "results"]


def test_preflight_names_the_scratch_folder_without_the_provision(fargate_dir, moto_url,
                                                                   runtime_url):
    dockerfile = without_tmp_provision(DOCKERFILE.read_text())
    scratch = mount(dockerfile, fargate_dir)
    env = task_environment(scratch, moto_url, runtime_url, RIGHTSIZER_MODE="preflight")
    result = run_entrypoint(task_user(dockerfile), env)

    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1
    assert f"preflight scratch FAILED: the scratch folder {scratch}" in failed[0]
    report = json.loads(s3_keys(moto_url)[f"runs/{RUN_ID}/preflight/loadgen.json"])
    assert report["ok"] is False
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "scratch": False, "worker": True, "runtime": True, "results": True}


def test_an_endpoint_sagemaker_reports_failed_stops_the_real_engine(fargate_dir, moto_url,
                                                                   runtime_url):
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends["123456789012"][REGION].endpoints[ENDPOINT]
    endpoint.endpoint_status, endpoint.failure_reason = "Failed", "ping health check failed"
    dockerfile = DOCKERFILE.read_text()
    scratch = mount(dockerfile, fargate_dir)
    result = run_entrypoint(task_user(dockerfile),
                            load_test_environment(scratch, moto_url, runtime_url))

    assert result.returncode == 0, result.stderr[-3000:]  # a measurement, of a dead endpoint
    summary = json.loads(s3_keys(moto_url)[f"runs/{RUN_ID}/{INSTANCE_TYPE}/summary.json"])
    assert summary["status"] == "failed" and summary["failed_stage"] == "warm_up"
    assert summary["reason"] == (f"the endpoint died during the warm-up: SageMaker reports "
                                 f"endpoint {ENDPOINT} as Failed: ping health check failed")
    assert not summary["steps"]
