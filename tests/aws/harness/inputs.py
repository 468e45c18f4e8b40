"""A valid AWS input and the payload it points at."""

from __future__ import annotations

from typing import Any

from .constants import BUCKET, REGION

PAYLOAD_KEY = "payloads/cat.jpg"
PAYLOAD_BYTES = b"\xff\xd8\xff\xe0 not really a jpeg"
MODEL_PACKAGE = (
    f"arn:aws:sagemaker:{REGION}:865070037744:model-package/"
    "pytorch-ic-resnet50-1-a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
)


def benchmark_input(*types: str, **overrides: Any) -> dict[str, Any]:
    """A valid AWS input: a model package, an image payload in the results bucket."""
    data: dict[str, Any] = {
        "name": "resnet50",
        "model": {"kind": "model_package", "arn": MODEL_PACKAGE},
        "instance_types": list(types) or ["ml.c5.xlarge"],
        "payloads": [{"path": f"s3://{BUCKET}/{PAYLOAD_KEY}", "content_type": "image/jpeg",
                      "accept": "application/json"}],
        "traffic": {"min_rps": 5, "max_rps": 50},
        "concurrency": 2,
    }
    data.update(overrides)
    return data
