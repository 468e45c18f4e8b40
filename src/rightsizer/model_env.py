"""What serves a local model, decided as SageMaker's framework containers decide it.

- The script: ``SAGEMAKER_PROGRAM`` (default ``inference.py``), looked up in
  ``SAGEMAKER_SUBMIT_DIRECTORY`` (when set), then ``code/``, then the model root; the first
  folder that has it wins, and that folder goes on ``sys.path``.
- The requirements: ``requirements.txt`` beside the script when the script is in its code
  folder, else ``code/requirements.txt``; the containers install it before loading the
  script. Here it goes into a virtual environment of its own, cached by the file's hash (and
  this interpreter), that also sees this environment's packages (the serving dependencies,
  numpy, ...), so a package the requirements pin is found first.

The environment is built in a temporary folder and renamed into place only when pip has
succeeded; a failed install raises ``ModelEnvError`` with pip's own output and leaves nothing
in the cache. Console scripts pip writes there keep the temporary path in their first line:
the server runs ``python -m``, never them.
"""

from __future__ import annotations

import hashlib
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from rightsizer.artifacts import ArtifactError, build_atomically, cache_root, is_s3, model_root
from rightsizer.schema import LocalModel

DEFAULT_PROGRAM = "inference.py"
CODE_DIR = "code"
REQUIREMENTS = "requirements.txt"
# Where SageMaker mounts the model; a SAGEMAKER_SUBMIT_DIRECTORY under it means the same folder
# under the local model root.
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
INSTALL_TIMEOUT_S = 1800.0
OUTPUT_TAIL_CHARS = 4000


class ModelEnvError(RuntimeError):
    """The script cannot be found or the requirements cannot be installed; says why."""


@dataclass(frozen=True)
class ServingPlan:
    """How a model is served: its root (``model_dir``), its script, its requirements."""

    root: Path
    script: Path
    requirements: Path | None

    @property
    def program(self) -> str:
        return self.script.name

    @property
    def code_dir(self) -> Path:
        return self.script.parent


def plan(root: Path, environment: dict[str, str]) -> ServingPlan:
    script = find_script(root, environment)
    return ServingPlan(root, script, find_requirements(root, script))


def find_script(root: Path, environment: dict[str, str]) -> Path:
    program = environment.get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM
    folders = script_folders(root, environment.get("SAGEMAKER_SUBMIT_DIRECTORY"))
    for folder in folders:
        if (folder / program).is_file():
            return (folder / program).resolve()
    searched = ", ".join(str(folder) for folder in folders)
    raise ModelEnvError(
        f"{root} has no {program}: looked in {searched} (SAGEMAKER_PROGRAM names the script, "
        "default inference.py; SAGEMAKER_SUBMIT_DIRECTORY, code/ and the model root are "
        "searched, as in SageMaker's framework containers)"
    )


def script_folders(root: Path, submit_directory: str | None) -> list[Path]:
    folders = [root / CODE_DIR, root]
    if submit_directory:
        folders.insert(0, submit_folder(root, submit_directory))
    return list(dict.fromkeys(folders))


def submit_folder(root: Path, submit_directory: str) -> Path:
    """SAGEMAKER_SUBMIT_DIRECTORY locally: relative to the model root, or under /opt/ml/model."""
    if submit_directory.startswith("s3://"):
        raise ModelEnvError(
            f"SAGEMAKER_SUBMIT_DIRECTORY is {submit_directory}: locally the code must be inside "
            "the model; put the scripts in code/ of the model.tar.gz and unset it, or set it "
            "to /opt/ml/model/code")
    path = Path(submit_directory)
    if path.is_absolute():
        path = path.relative_to(SAGEMAKER_MODEL_DIR) if path.is_relative_to(
            SAGEMAKER_MODEL_DIR) else path
    return root / path


def find_requirements(root: Path, script: Path) -> Path | None:
    candidates = [script.parent] if script.parent != root else []
    for folder in [*candidates, root / CODE_DIR]:
        if (folder / REQUIREMENTS).is_file():
            return folder / REQUIREMENTS
    return None


def environment_key(requirements: Path) -> str:
    """The requirements' content and this interpreter: the environment depends on both."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"\0{sys.executable}\0{sys.version}".encode())
    return digest.hexdigest()[:32]


def environment_dir(requirements: Path) -> Path:
    return cache_root() / "envs" / environment_key(requirements)


def python_for(requirements: Path | None) -> Path:
    """The interpreter to serve with: this one, or the model's environment (built if needed)."""
    if requirements is None:
        return Path(sys.executable)
    env = build_atomically(environment_dir(requirements),
                           lambda scratch: build_environment(scratch, requirements))
    return env / "bin" / "python"


def build_environment(env: Path, requirements: Path) -> None:
    _run(
        [sys.executable, "-m", "venv", "--without-pip", str(env)],
        "creating the model's virtual environment", requirements.parent,
    )
    see_these_packages(env)
    _run(
        [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install",
         "--disable-pip-version-check", "--no-input", "-r", str(requirements)],
        f"pip install -r {requirements}", requirements.parent,
    )


def see_these_packages(env: Path) -> None:
    """A .pth file that appends this interpreter's site-packages to the environment's path.

    ``site.addsitedir`` (not a bare path line) so their own .pth files are read too.
    """
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env),
                                                       "platbase": str(env)}))
    paths = dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib")])
    lines = [f"import site; site.addsitedir({str(path)!r})\n" for path in paths]
    (purelib / "_rightsizer_serving.pth").write_text("".join(lines))


def _run(command: list[str], what: str, cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelEnvError(f"{what} ran past {INSTALL_TIMEOUT_S:g} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-OUTPUT_TAIL_CHARS:]
        raise ModelEnvError(f"{what} failed (exit status {done.returncode}):\n{output}")


def describe_local_model(model: LocalModel, base_dir: Path) -> list[str]:
    """What ``rightsizer validate`` says about a local model: its script and requirements.

    Unpacks a local model.tar.gz into the cache (as the run would) but installs nothing and
    reads nothing from S3 (validate works offline); a problem is reported, not raised.
    """
    if is_s3(model.path):
        return [f"model: {model.path} is read from S3 at deploy; its script and requirements "
                "are decided then"]
    try:
        serving = plan(model_root(model.path, base_dir), model.environment)
    except (ArtifactError, ModelEnvError) as exc:
        return [f"model: {exc}"]
    return describe(serving)


def describe(serving: ServingPlan) -> list[str]:
    lines = [f"model root: {serving.root}", f"script: {serving.script} (its folder on sys.path)"]
    if serving.requirements is None:
        lines.append("requirements: none (served with this Python environment)")
        return lines
    env = environment_dir(serving.requirements)
    state = "built" if env.is_dir() else "built at the first deploy"
    lines.append(f"requirements: {serving.requirements}, installed into {env} ({state})")
    return lines
