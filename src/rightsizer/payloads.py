"""Sample payloads: read once, checked against SageMaker's limits, shared by smoke test and load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rightsizer.s3 import S3ReadError, read_s3
from rightsizer.schema import MAX_PAYLOAD_BYTES, S3_URI, Payload


class PayloadError(ValueError):
    """A payload that cannot be sent; the message names the payload and the fix."""


@dataclass(frozen=True)
class LoadedPayload:
    body: bytes
    content_type: str
    accept: str | None
    weight: float
    stream: bool = False  # read the response as a stream and time its tokens


def load_payloads(
    payloads: list[Payload], base_dir: str | Path = ".", s3_client: Any = None
) -> list[LoadedPayload]:
    """Read every payload (local path relative to ``base_dir``, s3:// URI, or inline body)."""
    loaded = []
    for index, payload in enumerate(payloads):
        where = f"payloads[{index}]"
        if payload.body is not None:
            body = payload.body.encode()
        elif S3_URI.match(payload.path or ""):
            body = _read_s3(payload.path or "", where, s3_client)
        else:
            path = Path(base_dir) / (payload.path or "")
            try:
                body = path.read_bytes()
            except OSError as exc:
                raise PayloadError(
                    f"{where}.path: cannot read {path} ({exc.strerror}); give a readable file, "
                    "relative to the input file"
                ) from exc
        if not body:
            raise PayloadError(f"{where}: the payload is empty; SageMaker needs a request body")
        if len(body) > MAX_PAYLOAD_BYTES:
            raise PayloadError(
                f"{where}: {len(body) / 1e6:.1f} MB is over SageMaker's 6 MB invoke limit; "
                "use a smaller sample"
            )
        loaded.append(LoadedPayload(
            body, payload.content_type, payload.accept, payload.weight, payload.stream
        ))
    return loaded


def _read_s3(uri: str, where: str, s3_client: Any) -> bytes:
    import boto3

    try:
        return read_s3(s3_client or boto3.client("s3"), uri)
    except S3ReadError as exc:
        raise PayloadError(
            f"{where}.path: {exc}; check the URI and that the role may s3:GetObject it"
        ) from exc
