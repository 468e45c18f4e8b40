"""Model artifacts and their environments: tarballs unpacked once (safely, atomically), the
script found as SageMaker's containers find it, requirements installed into a cached virtual
environment, and an install that fails leaving nothing behind."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from rightsizer import artifacts, model_env
from rightsizer.artifacts import ArtifactError, model_root
from rightsizer.model_env import ModelEnvError, describe_local_model, plan, python_for
from rightsizer.schema import LocalModel

PACKAGE = Path(__file__).parent / "fixtures" / "local_package"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(artifacts.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def with_link(path: Path, name: str, target: str) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        archive.addfile(info)
    return path


def cached_entries(cache: Path, kind: str) -> list[str]:
    """What the cache holds of ``kind``, lock files aside."""
    folder = cache / kind
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) \
        if folder.is_dir() else []


def test_a_tarball_is_unpacked_once_keyed_by_its_content(tmp_path: Path, cache: Path) -> None:
    tarball = make_tarball(tmp_path / "model.tar.gz",
                           {"model.joblib": b"weights", "code/inference.py": b"# script\n"})
    root = model_root("model.tar.gz", tmp_path)
    assert root == cache / "models" / artifacts.sha256_of(tarball)
    assert (root / "code" / "inference.py").read_bytes() == b"# script\n"
    (root / "marker").write_text("kept")  # a second deploy reuses the folder as it is
    assert model_root(str(tarball), Path("/elsewhere")) == root
    assert (root / "marker").is_file()
    assert cached_entries(cache, "models") == [root.name]


def test_a_folder_is_used_where_it_is(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "m").mkdir()
    assert model_root("m", tmp_path) == tmp_path / "m"
    assert not cache.exists()
    with pytest.raises(ArtifactError, match="not a folder"):
        model_root("missing", tmp_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        model_root("missing.tar.gz", tmp_path)


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "code/../../evil"])
def test_paths_outside_the_model_are_refused(tmp_path: Path, cache: Path, name: str) -> None:
    make_tarball(tmp_path / "model.tar.gz", {"model.joblib": b"w", name: b"x"})
    with pytest.raises(ArtifactError, match="outside the model folder"):
        model_root("model.tar.gz", tmp_path)
    assert cached_entries(cache, "models") == []
    assert not (tmp_path / "evil").exists()


def test_a_link_leading_outside_is_refused(tmp_path: Path, cache: Path) -> None:
    with_link(tmp_path / "model.tar.gz", "code", "/etc")
    with pytest.raises(ArtifactError, match="cannot unpack"):
        model_root("model.tar.gz", tmp_path)
    assert cached_entries(cache, "models") == []


def test_a_corrupt_tarball_leaves_nothing(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ArtifactError, match="cannot unpack"):
        model_root("model.tar.gz", tmp_path)
    assert cached_entries(cache, "models") == []


@pytest.fixture
def s3_bucket() -> Iterator[object]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        yield s3


def test_an_s3_tarball_is_read_and_unpacked(
    tmp_path: Path, cache: Path, s3_bucket: object
) -> None:
    tarball = make_tarball(tmp_path / "model.tar.gz", {"code/inference.py": b"# s3\n"})
    s3_bucket.put_object(Bucket="models", Key="m/model.tar.gz",  # type: ignore[attr-defined]
                         Body=tarball.read_bytes())
    root = model_root("s3://models/m/model.tar.gz", tmp_path, lambda: s3_bucket)
    assert root == cache / "models" / artifacts.sha256_of(tarball)
    assert (root / "code" / "inference.py").read_bytes() == b"# s3\n"
    assert list((cache / "downloads").iterdir()) == []  # the download itself is not kept
    with pytest.raises(ArtifactError, match="NoSuchKey"):
        model_root("s3://models/other/model.tar.gz", tmp_path, lambda: s3_bucket)


def test_an_s3_model_must_be_a_tarball() -> None:
    with pytest.raises(ValidationError, match=r"model\.tar\.gz"):
        LocalModel(path="s3://models/m/")
    assert LocalModel(path="s3://models/m/model.tar.gz").path.endswith("model.tar.gz")


def layout(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# x\n")
    return root


def test_script_search_order_is_the_containers(tmp_path: Path) -> None:
    root = layout(tmp_path, ["inference.py", "code/inference.py", "src/inference.py",
                             "code/serve.py"])
    assert plan(root, {}).script == root / "code" / "inference.py"
    assert plan(root, {"SAGEMAKER_PROGRAM": "serve.py"}).script == root / "code" / "serve.py"
    for submit in ("src", "/opt/ml/model/src", str(root / "src")):
        found = plan(root, {"SAGEMAKER_SUBMIT_DIRECTORY": submit}).script
        assert found == root / "src" / "inference.py"
    (root / "code" / "inference.py").unlink()
    assert plan(root, {}).script == root / "inference.py"


def test_a_missing_script_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ModelEnvError, match=r"no serve\.py: looked in .*/code, "):
        plan(layout(tmp_path, ["code/inference.py"]), {"SAGEMAKER_PROGRAM": "serve.py"})
    with pytest.raises(ModelEnvError, match="inside the model"):
        plan(tmp_path, {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/sourcedir.tar.gz"})


def test_requirements_come_from_the_code_folder(tmp_path: Path) -> None:
    root = layout(tmp_path, ["code/inference.py", "code/requirements.txt", "requirements.txt"])
    assert plan(root, {}).requirements == root / "code" / "requirements.txt"
    (root / "code" / "requirements.txt").unlink()
    assert plan(root, {}).requirements is None  # the root's is not the containers' file
    root_script = layout(tmp_path / "r", ["inference.py", "code/requirements.txt"])
    assert plan(root_script, {}).requirements == root_script / "code" / "requirements.txt"


def test_no_requirements_serve_with_this_python(tmp_path: Path) -> None:
    import sys

    assert python_for(None) == Path(sys.executable)


def test_requirements_install_into_a_cached_environment(tmp_path: Path, cache: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n{PACKAGE}\n")
    python = python_for(requirements)
    assert python.parent.parent == model_env.environment_dir(requirements)
    import subprocess

    probe = "import rightsizer_fixture_greeting as g, sklearn; print(g.GREETING)"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "installed from code/requirements.txt"
    assert python_for(requirements) == python  # reused, not rebuilt
    assert cached_entries(cache, "envs") == [python.parent.parent.name]


def test_a_failing_install_is_pips_message_and_leaves_nothing(
    tmp_path: Path, cache: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-index\nrightsizer-no-such-package==1.0\n")
    with pytest.raises(ModelEnvError, match="No matching distribution found for "
                                            "rightsizer-no-such-package"):
        python_for(requirements)
    assert cached_entries(cache, "envs") == []


def test_describe_names_the_script_and_requirements(tmp_path: Path) -> None:
    layout(tmp_path / "m", ["code/serve.py", "code/requirements.txt"])
    lines = describe_local_model(
        LocalModel(path="m", environment={"SAGEMAKER_PROGRAM": "serve.py"}), tmp_path)
    assert any(line.endswith("code/serve.py (its folder on sys.path)") for line in lines)
    assert any("code/requirements.txt, installed into" in line and "first deploy" in line
               for line in lines)
    assert describe_local_model(LocalModel(path="gone"), tmp_path)[0].startswith("model: ")
    s3_lines = describe_local_model(LocalModel(path="s3://models/model.tar.gz"), tmp_path)
    assert "read from S3 at deploy" in s3_lines[0]
