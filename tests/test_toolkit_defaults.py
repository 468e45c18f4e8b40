"""The default handlers against the SageMaker inference toolkit's own encoder and decoder.

Runs where ``sagemaker-inference`` is installed (skipped otherwise); rightsizer's defaults are
data-only, so the toolkit's pickled NPY is the one deliberate difference, and a single CSV row
stays a 2-D batch of one (the toolkit's numpy.genfromtxt flattens it, which a scikit-learn
model's predict then refuses).
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from rightsizer.serving import defaults

decoder = pytest.importorskip("sagemaker_inference.decoder")
encoder = pytest.importorskip("sagemaker_inference.encoder")

ARRAYS = [
    np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]),
    np.array([0, 2, 1]),
    np.array([[1, 2], [3, 4]]),
    np.array([0.25, 1e-7, 123456.5]),
]


@pytest.mark.parametrize("array", ARRAYS, ids=str)
@pytest.mark.parametrize("content_type", [defaults.JSON, defaults.CSV, defaults.NPY])
def test_output_fn_writes_what_the_toolkits_encoder_writes(
    array: np.ndarray, content_type: str
) -> None:
    theirs = encoder.encode(array, content_type)
    theirs = theirs.encode() if isinstance(theirs, str) else theirs
    assert defaults.default_output_fn(array, content_type) == theirs


@pytest.mark.parametrize("array", [a for a in ARRAYS if a.ndim == 2], ids=str)
@pytest.mark.parametrize("content_type", [defaults.JSON, defaults.CSV, defaults.NPY])
def test_input_fn_reads_what_the_toolkits_decoder_reads(
    array: np.ndarray, content_type: str
) -> None:
    body = defaults.default_output_fn(array, content_type)
    ours = defaults.default_input_fn(body, content_type)
    theirs = decoder.decode(body if content_type == defaults.NPY else body.decode(),
                            content_type)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.shape == theirs.shape


def test_json_predictions_with_numpy_values_match() -> None:
    prediction = {"classes": np.array([0, 2]), "score": np.float64(0.5)}
    assert defaults.default_output_fn(prediction, defaults.JSON) == \
        encoder.encode(prediction, defaults.JSON).encode()


def test_a_pickled_npy_is_refused_where_the_toolkit_would_unpickle() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        defaults.default_input_fn(buffer.getvalue(), defaults.NPY)
