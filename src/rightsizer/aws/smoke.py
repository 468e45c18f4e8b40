"""The smoke test on AWS: ``InvokeEndpoint`` with every sample payload, under the rules of
``rightsizer.smoke`` (the same as the local run's). A payload that asks for a stream goes
through ``InvokeEndpointWithResponseStream``, as the load test will send it, so that a container
that cannot stream, or a role that may not, fails here rather than after the endpoint is paid
for the whole load test.

The payloads are the ones the load generator will send (the run's copies in its folder), read
with one S3 client whose timeouts are bounded. Each payload is invoked
once (no SDK retry: a smoke test reports the endpoint's first answer, it does not hide it) and
only while the Lambda still has time for a whole answer, so the function fails saying why rather
than being cut off by its Timeout. A ``ModelError`` is the model's own answer: its original
status code, message and log stream go into the failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rightsizer.aws.events import RunContext, SmokeTestEvent
from rightsizer.payloads import LoadedPayload, PayloadError, load_payloads
from rightsizer.smoke import Answer, NoAnswer, SmokeTestFailed, no_answer_within, smoke_test

__all__ = ["SmokeTestFailed", "payload_client", "run_smoke_test", "runtime_client"]

# SageMaker's runtime gives up after 60 s; wait a little longer than that for its answer.
READ_TIMEOUT_SECONDS = 70
CONNECT_TIMEOUT_SECONDS = 10
ANSWER_BOUND_SECONDS = READ_TIMEOUT_SECONDS + CONNECT_TIMEOUT_SECONDS  # one attempt
# Reading one payload copy from the run's folder: two attempts of connect 5 s + read 15 s.
S3_READ_BOUND_SECONDS = 2 * (5 + 15)
# Kept back from the Lambda's remaining time for logging and returning.
WRAP_UP_SECONDS = 5


def runtime_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    # total_max_attempts counts attempts (max_attempts counts retries: 1 would be two tries).
    config = Config(
        read_timeout=READ_TIMEOUT_SECONDS,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1},
    )
    return boto3.client("sagemaker-runtime", region_name=region, config=config)


def payload_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(read_timeout=15, connect_timeout=5, retries={"total_max_attempts": 2})
    return boto3.client("s3", config=config)


def run_smoke_test(
    event: SmokeTestEvent,
    *,
    runtime: Any,
    s3: Any,
    seconds_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Every payload through ``InvokeEndpoint`` (or its streaming form); raises
    ``SmokeTestFailed`` with the reason.

    ``seconds_left``: the Lambda's remaining time (``context.get_remaining_time_in_millis``).
    """
    endpoint = event.item.names.endpoint
    payloads = _load(event.run, s3)

    def invoke(payload: LoadedPayload) -> Answer:
        return _invoke(runtime, endpoint, payload)

    def budget() -> float:
        return seconds_left() - WRAP_UP_SECONDS if seconds_left else float("inf")

    return smoke_test(
        f"endpoint {endpoint}", invoke, payloads,
        seconds_left=budget, answer_bound_seconds=ANSWER_BOUND_SECONDS,
    )


def _load(run: RunContext, s3: Any) -> list[LoadedPayload]:
    """The run's payloads (s3:// copies in its folder, as the load generator gets), read now."""
    try:
        return load_payloads(run.payloads, s3_client=s3)
    except PayloadError as exc:
        raise SmokeTestFailed(f"cannot read the sample payloads: {exc}") from None


def _invoke(runtime: Any, endpoint: str, payload: LoadedPayload) -> Answer:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        ReadTimeoutError,
    )

    request: dict[str, Any] = {
        "EndpointName": endpoint, "Body": payload.body, "ContentType": payload.content_type,
    }
    if payload.accept:
        request["Accept"] = payload.accept
    operation = "InvokeEndpointWithResponseStream" if payload.stream else "InvokeEndpoint"
    started = time.perf_counter()
    try:
        if payload.stream:
            response = runtime.invoke_endpoint_with_response_stream(**request)
            body = _streamed_body(response["Body"])
        else:
            response = runtime.invoke_endpoint(**request)
            body = response["Body"].read()
    except ClientError as exc:  # an error event in the stream (EventStreamError) is one too
        return _answer_from_error(exc.response, time.perf_counter() - started, operation)
    except (ReadTimeoutError, ConnectTimeoutError):
        raise NoAnswer(no_answer_within(READ_TIMEOUT_SECONDS)) from None
    except BotoCoreError as exc:
        raise NoAnswer(f"{type(exc).__name__}: {exc}") from None
    return Answer(200, body, response.get("ContentType") or "", time.perf_counter() - started)


def _streamed_body(events: Any) -> bytes:
    """The bytes of every ``PayloadPart`` event, in order (botocore decodes the event stream;
    an error event raises ``EventStreamError`` while iterating)."""
    return b"".join(event["PayloadPart"].get("Bytes", b"") for event in events
                    if "PayloadPart" in event)


def _answer_from_error(response: dict[str, Any], seconds: float, operation: str) -> Answer:
    """A ``ModelError`` is the model's own non-2xx answer; any other error is no answer."""
    error = response.get("Error", {})
    if error.get("Code") != "ModelError":
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        where = f" (HTTP {status})" if status else ""
        raise NoAnswer(
            f"{operation} failed with {error.get('Code', 'Error')}{where}: "
            f"{error.get('Message', '')}"
        )
    return Answer(
        status=int(response.get("OriginalStatusCode") or 500),
        body=str(response.get("OriginalMessage") or error.get("Message", "")).encode(),
        content_type="",
        seconds=seconds,
        logs=response.get("LogStreamArn"),
    )
