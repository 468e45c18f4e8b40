"""Default handler functions, as in SageMaker's scikit-learn/PyTorch inference toolkits.

Decoding is data-only: JSON, CSV and ``.npy`` without pickles. Nothing from a request is ever
evaluated or unpickled.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"


class HandlerError(Exception):
    """An error with its HTTP status, like the toolkits' ``GenericInferenceToolkitError``.

    User code may raise any exception with an integer ``status_code`` attribute (4xx/5xx) to
    choose the status; everything else is a 500.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def unsupported_content_type(content_type: str) -> HandlerError:
    return HandlerError(415, f"unsupported content type {content_type!r}; "
                             f"the default input_fn accepts {JSON}, {CSV}, {NPY}")


def unsupported_accept(accept: str) -> HandlerError:
    return HandlerError(406, f"unsupported accept type {accept!r}; "
                             f"the default output_fn writes {JSON}, {CSV}, {NPY}")


def default_model_fn(model_dir: str) -> Any:
    path = Path(model_dir) / "model.joblib"
    if not path.is_file():
        raise FileNotFoundError(
            f"inference.py defines no model_fn and {path} does not exist: define "
            "model_fn(model_dir) or save the model there with joblib.dump"
        )
    import joblib

    return joblib.load(path)


def default_input_fn(body: bytes, content_type: str) -> Any:
    import numpy as np

    if content_type == JSON:
        return np.asarray(json.loads(body))
    if content_type == CSV:
        rows = [row for row in csv.reader(io.StringIO(body.decode())) if row]
        return np.asarray(rows, dtype=float)
    if content_type == NPY:
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise unsupported_content_type(content_type)


def default_predict_fn(data: Any, model: Any) -> Any:
    # scikit-learn style first, then a plain callable (a PyTorch module, a function).
    predict = getattr(model, "predict", None)
    return predict(data) if callable(predict) else model(data)


def default_output_fn(prediction: Any, accept: str) -> bytes:
    import numpy as np

    if accept == JSON:
        return json.dumps(_plain(prediction)).encode()
    if accept == CSV:
        out = io.StringIO()
        array = np.asarray(prediction)
        # "\n" rows, as the toolkit's encoder (numpy.savetxt) writes them.
        rows = array.reshape(len(array), -1) if array.ndim else [[array]]
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode()
    if accept == NPY:
        out_bytes = io.BytesIO()
        np.save(out_bytes, np.asarray(prediction), allow_pickle=False)
        return out_bytes.getvalue()
    raise unsupported_accept(accept)


def _plain(value: Any) -> Any:
    """numpy values -> JSON-serialisable Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
