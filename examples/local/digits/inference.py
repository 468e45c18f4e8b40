"""Handwritten digit classifier (scikit-learn's 8x8 digits), served on SageMaker's contract.

Plain SageMaker framework-container handlers, with no rightsizer import, so the same file
serves under rightsizer's local container and in SageMaker's scikit-learn container.

Requests:
- ``image/png`` (any image Pillow reads): one digit, dark ink on a light background or the
  reverse; scaled to 8x8 grey levels 0..16 like ``sklearn.datasets.load_digits``.
- ``application/json``: ``{"instances": [[64 numbers 0..16], ...]}``.

Response (``application/json``): ``{"predictions": [{"class": 3, "probabilities": [...]}]}``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from PIL import Image

MODEL_FILE = "model.joblib"
PIXELS = 64


class RequestError(ValueError):
    """A bad request; ``status_code`` is how the serving container picks the HTTP status."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


def model_fn(model_dir: str) -> Any:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train it first with `python examples/local/digits/train.py`"
        )
    model = joblib.load(path)
    model.n_jobs = 1  # one request, one core: the server runs one worker per core
    return model


def input_fn(body: bytes, content_type: str) -> np.ndarray:
    if content_type.startswith("image/"):
        return image_to_features(body)[np.newaxis, :]
    if content_type == "application/json":
        return _json_instances(body)
    raise RequestError(
        f"unsupported content type {content_type!r}: send image/png or application/json",
        status_code=415,
    )


def predict_fn(data: np.ndarray, model: Any) -> list[dict[str, Any]]:
    probabilities = model.predict_proba(data)
    classes = model.classes_[probabilities.argmax(axis=1)]
    return [
        {"class": int(label), "probabilities": [round(float(p), 4) for p in row]}
        for label, row in zip(classes, probabilities, strict=True)
    ]


def output_fn(prediction: list[dict[str, Any]], accept: str) -> tuple[str, str]:
    if accept not in ("application/json", "*/*"):
        raise RequestError(f"unsupported accept type {accept!r}: use application/json", 406)
    return json.dumps({"predictions": prediction}), "application/json"


def image_to_features(data: bytes) -> np.ndarray:
    """An image of one digit -> 64 grey levels 0..16 (0 = background), as in load_digits."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises several types for undecodable data
        raise RequestError(f"cannot decode the image: {exc}") from exc
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent pixels count as background (white).
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    grey = np.asarray(image.convert("L").resize((8, 8), Image.Resampling.BOX), dtype=float)
    ink = 255.0 - grey
    if grey.mean() < 128:  # light ink on a dark background
        ink = grey
    return ink.reshape(PIXELS) * (16.0 / 255.0)


def _json_instances(body: bytes) -> np.ndarray:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise RequestError(f"the body is not JSON: {exc}") from exc
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list) or not instances:
        raise RequestError('send {"instances": [[64 numbers 0..16], ...]}')
    try:
        array = np.asarray(instances, dtype=float)
    except (TypeError, ValueError) as exc:
        raise RequestError(f"instances must be lists of numbers: {exc}") from exc
    if array.ndim != 2 or array.shape[1] != PIXELS:
        raise RequestError(f"each instance needs {PIXELS} numbers (8x8 pixels, 0..16)")
    return array
