"""A valid AWS input and the payload it points at."""

from __future__ import annotations

from typing import Any

from .constants import BUCKET, REGION

PAYLOAD_KEY = "payloads/cat.jpg"
# What the state machine passes Validate as $$.Execution (name, ARN, start time).
EXECUTION = {
    "name": "nightly-2026-11-25",
    "arn": "arn:aws:states:us-east-1:123456789012:execution:rightsizer-rightsize:"
           "nightly-2026-11-25",
    "start_time": "2026-11-25T19:44:00.123Z",
}
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
