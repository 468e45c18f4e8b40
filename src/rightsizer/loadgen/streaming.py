"""One streamed invocation through Locust's FastHttpUser client: TTFT, tokens, whole latency.

Locust's own ``stream=True`` reports a request when its headers arrive (its response_time
leaves the body out), so the request is sent with ``catch_response=True``, which leaves the
reporting to the caller, and this module fires Locust's ``request`` event itself once the last
byte is read: Locust's statistics and CSVs then see whole-request latency, as for any other
request. The token figures go into the request's ``context`` (``ttft_ms``, ``output_tokens``,
``tokens_reported``), where the driver's listener finds them.

The body is read as it arrives: a container's chunked ``/invocations`` response line by line
(server-sent events and JSON lines are line-based), or the SageMaker runtime's
InvokeEndpointWithResponseStream answer, an AWS event stream, frame by frame, decoded by
botocore's own ``EventStreamBuffer``.

Imported only with the driver, in load-generator processes; it imports neither Locust nor
gevent itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.eventstream import EventStreamBuffer, EventStreamMessage

from rightsizer.tokens import StreamTokenParser

if TYPE_CHECKING:
    from geventhttpclient.response import HTTPSocketResponse
    from locust.contrib.fasthttp import FastHttpSession

REQUEST_NAME = "invocations"
# Sent with a streamed request: a compressed stream could not be read as it arrives.
UNCOMPRESSED = {"Accept-Encoding": "identity"}
# An event stream message: 4 bytes of total length, 4 of headers length, 4 of CRC.
_PRELUDE_BYTES = 12

PayloadReader = Callable[["HTTPSocketResponse"], Iterator[bytes]]
"""Yields a streamed body's payload bytes as they arrive; raises ``StreamFailure``."""


class StreamFailure(Exception):
    """The response stream reported an error after a successful start (HTTP 200)."""


def container_payloads(stream: HTTPSocketResponse) -> Iterator[bytes]:
    """A container's chunked response, a line at a time as each line completes."""
    while line := stream.readline(b"\n"):
        yield line
    if rest := stream.read():  # a last line without its newline
        yield rest


def event_stream_payloads(stream: HTTPSocketResponse) -> Iterator[bytes]:
    """The ``Bytes`` of each PayloadPart of an InvokeEndpointWithResponseStream answer.

    Reads one whole message at a time (its length is the prelude's first field), so that a
    payload is handed on as soon as its message has arrived; botocore checks and decodes it.
    """
    buffer = EventStreamBuffer()
    while prelude := stream.read(_PRELUDE_BYTES):
        total = max(int.from_bytes(prelude[:4], "big"), _PRELUDE_BYTES)
        message_bytes = prelude + stream.read(total - len(prelude))
        if len(message_bytes) < total:
            raise StreamFailure("the event stream ended inside a message")
        buffer.add_data(message_bytes)
        for message in buffer:
            if payload := _payload_of(message):
                yield payload


def _payload_of(message: EventStreamMessage) -> bytes:
    """A PayloadPart's bytes; an error or exception message fails the request."""
    headers = message.headers
    kind = headers.get(":message-type")
    if kind == "event":
        return message.payload if headers.get(":event-type") == "PayloadPart" else b""
    if kind == "exception":  # ModelStreamError, InternalStreamFailure: a JSON payload
        raise StreamFailure(f"{headers.get(':exception-type')}: {_exception_text(message)}")
    raise StreamFailure(f"{headers.get(':error-code')}: {headers.get(':error-message')}")


def _exception_text(message: EventStreamMessage) -> str:
    try:
        body = json.loads(message.payload)
    except ValueError:
        return str(message.payload.decode("utf-8", "replace"))
    if not isinstance(body, dict):
        return str(body)
    code = f" ({body['ErrorCode']})" if body.get("ErrorCode") else ""
    return f"{body.get('Message', '')}{code}"


def send_streamed(
    client: FastHttpSession,
    path: str,
    body: bytes,
    headers: dict[str, str],
    context: dict[str, Any],
    read_payloads: PayloadReader,
) -> None:
    """POST ``body`` and read the streamed answer to its end; report it as one request."""
    start_time = time.time()
    sent = time.perf_counter()
    response: Any = client.request(
        "POST",
        path,
        data=body,  # type: ignore[arg-type]  # sent as is
        headers=headers,
        name=REQUEST_NAME,
        stream=True,
        catch_response=True,
        context=context,
    )
    exception: BaseException | None = response.request_meta["exception"]
    length = 0
    if exception is None:
        try:
            length = _read_tokens(response.stream, read_payloads, sent, context)
        except Exception as exc:  # whatever breaks the body fails this request, not the step
            exception = exc
        finally:
            response.stream.release()  # closes a connection left inside an unread body
    client.request_event.fire(
        request_type="POST",
        name=REQUEST_NAME,
        response_time=(time.perf_counter() - sent) * 1000.0,
        response_length=length,
        response=response,
        context=context,
        exception=exception,
        start_time=start_time,
        url=response.request_meta["url"],
    )


def _read_tokens(
    stream: HTTPSocketResponse,
    read_payloads: PayloadReader,
    sent: float,
    context: dict[str, Any],
) -> int:
    """Feed the payloads to a token parser as they arrive; the token fields go to ``context``.

    Returns the payload bytes read."""
    parser = StreamTokenParser()
    length = 0
    for payload in read_payloads(stream):
        length += len(payload)
        parser.feed(payload, time.perf_counter())
    tokens, reported = parser.close(time.perf_counter())
    if parser.error is not None:
        raise StreamFailure(parser.error)
    first = parser.first_token_at
    context["ttft_ms"] = float("nan") if first is None else (first - sent) * 1000.0
    context["output_tokens"] = tokens
    context["tokens_reported"] = reported
    return length
