"""Iris species classifier in SageMaker's scikit-learn container layout.

The model.tar.gz holds ``model.joblib`` at its root and this script in ``code/``, with
``code/requirements.txt``, exactly as uploaded for SageMaker. Only ``model_fn`` and
``predict_fn`` are defined: the container's default ``input_fn`` decodes the CSV (or JSON)
request and its default ``output_fn`` writes JSON.

Request (``text/csv``): one flower per row, ``sepal length,sepal width,petal length,petal
width`` in cm. Response (``application/json``): ``["setosa", ...]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
from species import names_of  # code/ is on sys.path, as in the SageMaker containers


def model_fn(model_dir: str) -> Any:
    model = joblib.load(Path(model_dir) / "model.joblib")
    model.n_jobs = 1  # one request, one core: the server runs one worker per core
    return model


def predict_fn(data: Any, model: Any) -> list[str]:
    return names_of(model.predict(data))
