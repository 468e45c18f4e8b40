"""Reading one S3 object by its s3:// URI: the one place that knows how, and how it fails."""

from __future__ import annotations

from typing import Any

from rightsizer.schema import S3_URI


class S3ReadError(RuntimeError):
    """An object could not be read; the message names the URI and S3's error code."""

    def __init__(self, uri: str, code: str, detail: str = "") -> None:
        self.uri = uri
        self.code = code
        super().__init__(f"cannot read {uri} ({code}{': ' + detail if detail else ''})")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty."""
    match = S3_URI.match(uri)
    if not match:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return match["bucket"], match["key"] or ""


def read_s3(s3: Any, uri: str) -> bytes:
    """The object's bytes, or ``S3ReadError`` saying NoSuchKey, AccessDenied, ... and where."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_uri(uri)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise S3ReadError(uri, error.get("Code", "Error"), error.get("Message", "")) from exc
    except BotoCoreError as exc:  # no answer, no credentials: not an S3 error code
        raise S3ReadError(uri, type(exc).__name__, str(exc)) from exc
    return body
