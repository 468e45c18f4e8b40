"""Each model layout SageMaker's framework containers take, served by a real `rightsizer run`
(deploy, smoke test, a short load search with real requests) on a real scikit-learn model:
a folder, a model.tar.gz, code/ with SAGEMAKER_PROGRAM, code/requirements.txt installed, and a
requirement that cannot be installed.

Each layout also holds a decoy: a script in a place the containers would not pick, whose
model_fn raises, so a run passes only when the right script was chosen. One model cache (and so
one requirements install) serves the whole session."""

from __future__ import annotations

import http.client
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from rightsizer import artifacts, model_env
from rightsizer.cli import main
from rightsizer.endpoints import local
from rightsizer.endpoints.local import DeployError, LocalEndpoint
from rightsizer.schema import InstanceTypeSpec, LocalModel

PACKAGE = Path(__file__).parent / "fixtures" / "local_package"
QUICK_LOAD = {"step_seconds": 2, "warmup_seconds": 0.5, "start_rps": 4, "max_rps": 4,
              "max_steps": 1, "max_seconds": 10}
FLOWERS = b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"

# Checks the environment the containers set, then leaves predict_fn/input_fn/output_fn to the
# defaults: CSV in, model.predict, JSON out.
SCRIPT = """
import os
from pathlib import Path

import joblib


def model_fn(model_dir):
    assert os.environ["SM_MODEL_DIR"] == model_dir, (os.environ["SM_MODEL_DIR"], model_dir)
    assert Path(os.environ["SAGEMAKER_SUBMIT_DIRECTORY"]) == Path(__file__).parent
    assert os.environ["SAGEMAKER_PROGRAM"] == Path(__file__).name
    return joblib.load(Path(model_dir) / "model.joblib")
"""
# Imports the package that code/requirements.txt installs.
GREETING_SCRIPT = SCRIPT + """
import json

import rightsizer_fixture_greeting


def output_fn(prediction, accept):
    return json.dumps({"classes": prediction.tolist(),
                       "greeting": rightsizer_fixture_greeting.GREETING})
"""
DECOY = 'def model_fn(model_dir):\n    raise RuntimeError("the decoy script was loaded")\n'


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache for the session: each requirements file is installed once."""
    cache = tmp_path_factory.mktemp("rightsizer-cache")
    previous = os.environ.get(artifacts.CACHE_ENV)
    os.environ[artifacts.CACHE_ENV] = str(cache)
    yield cache
    if previous is None:
        del os.environ[artifacts.CACHE_ENV]
    else:
        os.environ[artifacts.CACHE_ENV] = previous


@pytest.fixture(scope="session")
def model_bytes() -> bytes:
    features, labels = load_iris(return_X_y=True)
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(features, labels), buffer)
    return buffer.getvalue()


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def tarball(path: Path, files: dict[str, str | bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def requirements_files(model: bytes, requirement: str) -> dict[str, str | bytes]:
    return {"model.joblib": model, "code/inference.py": GREETING_SCRIPT,
            "code/requirements.txt": f"--no-index\n{requirement}\n", "inference.py": DECOY}


def make_layout(name: str, base: Path, model: bytes) -> dict[str, Any]:
    """The input's "model" for layout ``name``, written under ``base``."""
    if name == "folder":
        write(base / "m", {"model.joblib": model, "inference.py": SCRIPT})
        return {"kind": "local", "path": "m"}
    if name == "tarball":
        tarball(base / "model.tar.gz", {"model.joblib": model,
                                        "code/inference.py": SCRIPT,
                                        "inference.py": DECOY})
        return {"kind": "local", "path": "model.tar.gz"}
    if name == "sagemaker_program":
        write(base / "m", {"model.joblib": model, "code/serve.py": SCRIPT,
                           "code/inference.py": DECOY})
        return {"kind": "local", "path": "m",
                "environment": {"SAGEMAKER_PROGRAM": "serve.py",
                                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}}
    if name == "requirements":
        tarball(base / "model.tar.gz", requirements_files(model, str(PACKAGE)))
        return {"kind": "local", "path": "model.tar.gz"}
    assert name == "failing_requirement"
    tarball(base / "model.tar.gz",
            requirements_files(model, "rightsizer-no-such-package==1.0"))
    return {"kind": "local", "path": "model.tar.gz"}


def run_input(base: Path, model: dict[str, Any]) -> Path:
    document = {
        "name": "layout",
        "model": model,
        "instance_types": ["local.1cpu"],
        "payloads": [{"body": FLOWERS.decode(), "content_type": "text/csv",
                      "accept": "application/json"}],
        "traffic": {"min_rps": 1, "max_rps": 2},
        "load": QUICK_LOAD,
        "prices": {"local.1cpu": 0.05},
        "results": str(base / "results"),
    }
    path = base / "input.json"
    path.write_text(json.dumps(document))
    return path


def only_summary(base: Path) -> dict[str, Any]:
    (summary,) = (base / "results").glob("runs/*/local.1cpu/summary.json")
    result: dict[str, Any] = json.loads(summary.read_text())
    return result


@pytest.mark.parametrize("layout", ["folder", "tarball", "sagemaker_program", "requirements"])
def test_rightsizer_run_serves_the_layout(
    layout: str, tmp_path: Path, model_bytes: bytes, session_cache: Path
) -> None:
    code = main(["run", str(run_input(tmp_path, make_layout(layout, tmp_path, model_bytes)))])
    summary = only_summary(tmp_path)
    assert summary["status"] == "succeeded", summary.get("reason")
    assert code == 0
    assert summary["steps"] and summary["steps"][0]["failures"] == 0
    assert not local._LIVE


def test_a_failing_requirement_fails_the_deploy_with_pips_message(
    tmp_path: Path, model_bytes: bytes, session_cache: Path
) -> None:
    model = make_layout("failing_requirement", tmp_path, model_bytes)
    code = main(["run", str(run_input(tmp_path, model))])
    summary = only_summary(tmp_path)
    assert code == 1
    assert summary["failed_stage"] == "deploy"
    assert "No matching distribution found for rightsizer-no-such-package" in summary["reason"]
    # Nothing half-made: no environment for these requirements, no temporary folder.
    requirements = artifacts.model_root("model.tar.gz", tmp_path) / "code" / "requirements.txt"
    assert not model_env.environment_dir(requirements).exists()
    assert not list((session_cache / "envs").glob(".tmp*"))
    assert not local._LIVE


def post_csv(url: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", "/invocations", FLOWERS,
                           {"Content-Type": "text/csv", "Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_installed_package_serves_and_the_environment_is_reused(
    tmp_path: Path, model_bytes: bytes, session_cache: Path
) -> None:
    model = LocalModel.model_validate(make_layout("requirements", tmp_path, model_bytes))
    spec = InstanceTypeSpec(instance_type="local.1cpu")
    with LocalEndpoint(model, spec, model_root=tmp_path) as endpoint:
        status, body = post_csv(endpoint.deploy())
        command = endpoint.command(0)
    assert status == 200
    assert json.loads(body) == {"classes": [0, 2],
                                "greeting": "installed from code/requirements.txt"}
    envs = [p for p in (session_cache / "envs").iterdir() if not p.name.endswith(".lock")]
    assert len(envs) == 1  # the run above and this endpoint share one environment
    assert command[0] == str(envs[0] / "bin" / "python")


def test_an_unsafe_tarball_is_a_deploy_error(tmp_path: Path) -> None:
    tarball(tmp_path / "model.tar.gz", {"../outside.py": "x = 1\n"})
    endpoint = LocalEndpoint(LocalModel(path="model.tar.gz"),
                             InstanceTypeSpec(instance_type="local.1cpu"), model_root=tmp_path)
    with pytest.raises(DeployError, match="outside the model folder"):
        endpoint.deploy()
    assert endpoint.pid is None
