"""A schedule's input kept in the stack's bucket: ``{"input_uri": "s3://<bucket>/schedules/..."}``.

``rightsizer schedule add`` writes an input too large to carry inline to the bucket and gives the
schedule only this reference; Validate reads it back with ``resolve`` before checking the input.
"""

from __future__ import annotations

import json
from typing import Any

from rightsizer.s3 import read_s3, split_s3_uri

REFERENCE_KEY = "input_uri"


def referenced_uri(document: str) -> str | None:
    """The URI when ``document`` is exactly a reference, else None."""
    try:
        data = json.loads(document)
    except json.JSONDecodeError:
        return None
    uri = data.get(REFERENCE_KEY) if isinstance(data, dict) and len(data) == 1 else None
    return uri if isinstance(uri, str) else None


def resolve(execution_input: Any, bucket: str, s3: Any) -> Any:
    """The input a schedule kept in the stack's bucket, or ``execution_input`` itself.

    Only ``s3://<the stack's bucket>/schedules/...`` is followed: an execution cannot make
    Validate read anything else."""
    uri = referenced_uri(json.dumps(execution_input))
    if uri is None:
        return execution_input
    ref_bucket, key = split_s3_uri(uri)
    if ref_bucket != bucket or not key.startswith("schedules/"):
        raise ValueError(f"{REFERENCE_KEY}: {uri} is not a schedule's input in s3://{bucket}/"
                         "schedules/")
    return json.loads(read_s3(s3, uri))
