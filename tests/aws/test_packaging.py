"""How the code reaches Lambda and Fargate: the shared layer, the handlers' imports, sam build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "src"
SAM = ROOT / ".venv-sam" / "bin" / "sam"


def test_layer_holds_the_real_package_and_lists_what_handlers_import():
    """``sam build --use-container`` mounts only the layer's ContentUri and cannot follow a
    symlink out of it: the package must be there as real files."""
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    assert template["Resources"]["SharedLayer"]["Properties"]["ContentUri"] == "src/"
    assert (LAYER / "rightsizer" / "aws" / "validate.py").is_file()
    links = [p for p in LAYER.rglob("*") if p.is_symlink()]
    assert not links, f"symlinks in the layer's folder: {links}"
    requirements = (LAYER / "requirements.txt").read_text()
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pydantic = next(d for d in core if d.startswith("pydantic"))
    assert pydantic in requirements  # the same bounds as the package
    assert "aws-lambda-powertools" in requirements


def test_handlers_import_without_numpy_or_pandas():
    """The layer leaves numpy and pandas out: no handler may need them, even indirectly."""
    code = (
        "import sys, importlib.util\n"
        "for name in ('numpy', 'pandas', 'locust', 'gevent'):\n"
        "    sys.modules[name] = None  # any import of them now raises ImportError\n"
        "for fn in ('validate', 'smoke_test', 'recommend', 'janitor'):\n"
        "    spec = importlib.util.spec_from_file_location(fn, f'functions/{fn}/app.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "import rightsizer.recommend, rightsizer.report, rightsizer.pricing\n"
        "import rightsizer.aws.validate, rightsizer.aws.smoke, rightsizer.aws.finish\n"
        "import rightsizer.aws.janitor, rightsizer.aws.start\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def _python312() -> str | None:
    found = shutil.which("python3.12")
    if found and subprocess.run([found, "--version"], capture_output=True,
                                check=False).returncode == 0:
        return found
    pyenv = shutil.which("pyenv")
    if pyenv:
        prefix = subprocess.run([pyenv, "prefix", "3.12"], capture_output=True, text=True,
                                check=False)
        candidate = Path(prefix.stdout.strip().splitlines()[-1] if prefix.stdout.strip()
                         else "") / "bin" / "python3.12"
        if prefix.returncode == 0 and candidate.exists():
            return str(candidate)
    return None


def test_sam_build_produces_the_layer_and_functions(tmp_path):
    """``sam build`` as a user runs it: pip fetches Linux wheels for python3.12 from PyPI."""
    if not SAM.exists():
        pytest.skip("aws-sam-cli is not installed in .venv-sam: run `make test`")
    python = _python312()
    if python is None:
        pytest.skip("sam build needs python3.12 (the functions' runtime) on PATH")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0",
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}"}
    build = tmp_path / "build"
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400, check=False,
    )
    if result.returncode != 0 and "pip" in result.stdout + result.stderr and (
        "Could not find a version" in result.stdout + result.stderr
        or "NewConnectionError" in result.stdout + result.stderr
    ):
        pytest.skip(f"no package registry reachable for sam build: {result.stdout[-300:]}")
    assert result.returncode == 0, result.stdout + result.stderr
    layer = build / "SharedLayer" / "python"
    assert (layer / "rightsizer" / "aws" / "validate.py").is_file()
    assert (layer / "rightsizer" / "data" / "prices.json").is_file()
    assert list((layer / "pydantic_core").glob("*cpython-312-x86_64-linux-gnu.so"))
    assert (layer / "aws_lambda_powertools").is_dir()
    for function in ("ValidateFunction", "SmokeTestFunction", "RecommendFunction",
                     "JanitorFunction"):
        assert (build / function / "app.py").is_file()
