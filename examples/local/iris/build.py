"""Train the iris classifier and pack it as SageMaker takes it: model.tar.gz with
``model.joblib`` at the root and ``code/`` (inference.py, species.py, requirements.txt).

    python examples/local/iris/build.py     # writes examples/local/iris/model.tar.gz

The iris data ships with scikit-learn: nothing is downloaded.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

HERE = Path(__file__).resolve().parent
TARBALL = HERE / "model.tar.gz"


def train() -> RandomForestClassifier:
    features, labels = load_iris(return_X_y=True)
    return RandomForestClassifier(n_estimators=50, random_state=0).fit(features, labels)


def pack(model: RandomForestClassifier, tarball: Path) -> None:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    with tarfile.open(tarball, "w:gz") as archive:
        info = tarfile.TarInfo("model.joblib")
        info.size = buffer.tell()
        buffer.seek(0)
        archive.addfile(info, buffer)
        for path in sorted((HERE / "code").iterdir()):
            if path.is_file():
                archive.add(path, arcname=f"code/{path.name}")


if __name__ == "__main__":
    pack(train(), TARBALL)
    print(f"wrote {TARBALL}")
