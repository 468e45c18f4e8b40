"""Train the example digits model and write ``model.joblib`` beside this file.

    python examples/local/digits/train.py                # train, report accuracy and latency
    python examples/local/digits/train.py --payload      # also (re)write payload.png

The data is ``sklearn.datasets.load_digits()``, which ships inside scikit-learn: nothing is
downloaded. A random forest of 250 trees costs about 10 ms of one core per single-image request,
so that the local benchmark has real CPU work to size. Pipelines call ``ensure_model``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
MODEL_FILE = "model.joblib"
TREES = 250
SEED = 0
# payload.png is digit #10 of load_digits (a 0); tests check the model says so.
PAYLOAD_INDEX = 10
PAYLOAD_SIZE = 32


def make_model() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=TREES, random_state=SEED, n_jobs=-1)


def train(model_dir: Path = HERE) -> Path:
    """Fit on all of load_digits and save atomically (parallel callers never see half a file)."""
    features, labels = load_digits(return_X_y=True)
    model = make_model().fit(features, labels)
    model.n_jobs = 1  # serving: one request runs on one core
    path = Path(model_dir) / MODEL_FILE
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".model-", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def ensure_model(model_dir: Path = HERE) -> Path:
    """The trained model's path, training it first if it is missing."""
    path = Path(model_dir) / MODEL_FILE
    return path if path.is_file() else train(model_dir)


def holdout_accuracy() -> float:
    features, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, random_state=SEED, stratify=labels
    )
    return float(make_model().fit(x_train, y_train).score(x_test, y_test))


def single_request_ms(path: Path, repeats: int = 50) -> float:
    """Median time of one single-sample predict_proba on one core."""
    model = joblib.load(path)
    sample = load_digits().data[:1]
    model.predict_proba(sample)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(sample)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def digit_png(index: int = PAYLOAD_INDEX, size: int = PAYLOAD_SIZE) -> bytes:
    """load_digits sample ``index`` as a PNG: dark ink on white, 8x8 scaled up to ``size``."""
    import io

    levels = load_digits().images[index]  # 0..16, 0 = background
    grey = np.rint(255 - levels * (255 / 16)).astype(np.uint8)
    image = Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=HERE)
    parser.add_argument("--payload", action="store_true", help="also write payload.png")
    args = parser.parse_args()
    print(f"hold-out accuracy: {holdout_accuracy():.3f}")
    path = train(args.model_dir)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); "
          f"one request: {single_request_ms(path):.1f} ms on one core")
    if args.payload:
        payload = args.model_dir / "payload.png"
        payload.write_bytes(digit_png())
        print(f"wrote {payload} (load_digits #{PAYLOAD_INDEX}, "
              f"a {load_digits().target[PAYLOAD_INDEX]})")


if __name__ == "__main__":
    main()
