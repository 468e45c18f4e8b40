"""Smoke test: one InvokeEndpoint with the sample payload before any load is spent on an endpoint.

A failure raises ``SmokeTestFailed`` whose message carries the endpoint's own words (the model's
status code and message from ``ModelError``, and where its logs are), so the report says *why*
instead of "model returned 4xx or 5xx".
"""

from __future__ import annotations

import time
from typing import Any

from rightsizer.aws.events import SmokeTestEvent
from rightsizer.schema import S3_URI

MAX_MESSAGE = 1500


class SmokeTestFailed(RuntimeError):
    """The endpoint did not answer the sample payload correctly."""


def runtime_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    # One attempt: a smoke test reports the endpoint's first answer, it does not hide it.
    # SageMaker's runtime gives up after 60 s; wait a little longer than that.
    config = Config(read_timeout=70, connect_timeout=10, retries={"max_attempts": 1})
    return boto3.client("sagemaker-runtime", region_name=region, config=config)


def smoke_test(event: SmokeTestEvent, *, runtime: Any, s3: Any) -> dict[str, Any]:
    item = event.item
    ref = item.smoke_payload
    body = _read(ref.uri, s3)
    request: dict[str, Any] = {
        "EndpointName": item.names.endpoint,
        "Body": body,
        "ContentType": ref.content_type,
    }
    if ref.accept:
        request["Accept"] = ref.accept
    started = time.perf_counter()
    try:
        response = runtime.invoke_endpoint(**request)
        answer = response["Body"].read()
    except Exception as exc:
        raise SmokeTestFailed(_describe_invoke_error(item.names.endpoint, exc)) from None
    latency_ms = (time.perf_counter() - started) * 1000
    content_type = response.get("ContentType") or ""
    if not answer:
        raise SmokeTestFailed(
            f"endpoint {item.names.endpoint} answered the sample payload with an empty body"
        )
    if ref.accept and not _accepts(ref.accept, content_type):
        raise SmokeTestFailed(
            f"endpoint {item.names.endpoint} answered with Content-Type {content_type!r}, "
            f"but the payload asks for {ref.accept!r}: check the payload's 'accept' or the "
            f"model's output_fn. First bytes: {answer[:200]!r}"
        )
    return {
        "endpoint": item.names.endpoint,
        "content_type": content_type,
        "response_bytes": len(answer),
        "latency_ms": round(latency_ms, 1),
    }


def _read(uri: str, s3: Any) -> bytes:
    match = S3_URI.match(uri)
    if not match:
        raise SmokeTestFailed(f"sample payload {uri!r} is not an s3:// URI")
    try:
        return s3.get_object(Bucket=match["bucket"], Key=match["key"] or "")["Body"].read()
    except Exception as exc:
        raise SmokeTestFailed(f"cannot read the sample payload {uri}: {exc}") from None


def _accepts(accept: str, content_type: str) -> bool:
    wanted = [a.split(";")[0].strip().lower() for a in accept.split(",")]
    got = content_type.split(";")[0].strip().lower()
    for pattern in wanted:
        if pattern in ("*/*", got) or (
            pattern.endswith("/*") and got.startswith(pattern[:-1])
        ):
            return True
    return False


def _describe_invoke_error(endpoint: str, exc: Exception) -> str:
    from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

    if isinstance(exc, ClientError):
        response = exc.response
        error = response.get("Error", {})
        code = error.get("Code", "Error")
        message = error.get("Message", str(exc))
        if code == "ModelError":
            status = response.get("OriginalStatusCode")
            original = response.get("OriginalMessage") or message
            logs = response.get("LogStreamArn")
            where = f" (container logs: {logs})" if logs else ""
            text = f"the model answered {status or 'an error'}: {original}{where}"
        else:
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = f"InvokeEndpoint failed with {code} (HTTP {status}): {message}"
    elif isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        text = "no answer within 70 s (SageMaker's runtime gives up after 60 s): the model is " \
            "too slow for this payload or hung"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return f"smoke test of endpoint {endpoint}: {text}"[:MAX_MESSAGE]
