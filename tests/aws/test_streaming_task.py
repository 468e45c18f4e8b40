"""InvokeEndpointWithResponseStream from the load generator, against a loopback runtime.

The stand-in of the SageMaker runtime checks each request as the real service would: the
operation's path, the content type and ``X-Amzn-SageMaker-Accept`` header the botocore model
names, and a SigV4 signature for service "sagemaker" that it recomputes from the request it
received with the same (fake) credentials. It answers ``application/vnd.amazon.eventstream``:
messages built here as the AWS event stream encoding defines them (prelude with lengths and
CRC, typed headers, payload, message CRC), PayloadPart events whose payload is the raw
``Bytes`` (the member is the event's payload in the model), carrying TGI's server-sent events
split across parts, or a ModelStreamError exception after a first token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from harness.eventstream import model_stream_error, payload_part
from loopback import send_whole, serving

from rightsizer.loadgen.processes import LoadGenerator
from rightsizer.loadgen.target import SageMakerTarget
from rightsizer.payloads import LoadedPayload

ENDPOINT = "llm-endpoint"
REGION = "us-east-1"
TOKENS = 6
PART_PAUSE_S = 0.04
GOOD = b'{"inputs": "Tell me", "stream": true}'
BROKEN = b'{"inputs": "Break", "stream": true}'
ERROR_MESSAGE = "Model invocation exceeded the time limit"


def tgi_events() -> bytes:
    events = []
    for index in range(TOKENS):
        last = index == TOKENS - 1
        events.append(b"data:" + json.dumps({
            "index": index, "token": {"id": index, "text": f" t{index}", "special": False},
            "generated_text": None,
            "details": {"finish_reason": "length", "generated_tokens": TOKENS} if last else None,
        }).encode() + b"\n\n")
    return b"".join(events)


def test_the_frames_built_here_are_what_botocore_decodes():
    buffer = EventStreamBuffer()
    buffer.add_data(payload_part(b"abc") + model_stream_error(ERROR_MESSAGE))
    first, second = list(buffer)
    assert first.headers[":event-type"] == "PayloadPart" and first.payload == b"abc"
    assert second.headers[":exception-type"] == "ModelStreamError"


def signature_problem(handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
    """Why the request's SigV4 signature is wrong, recomputed from what was received."""
    authorization = handler.headers.get("Authorization", "")
    scope = f"testing/{handler.headers.get('X-Amz-Date', '')[:8]}/{REGION}/sagemaker/aws4_request"
    if not authorization.startswith(f"AWS4-HMAC-SHA256 Credential={scope}, "):
        return f"not signed for sagemaker in {REGION}: {authorization!r}"
    fields = dict(part.strip().split("=", 1) for part in authorization[17:].split(","))
    signed = fields["SignedHeaders"].split(";")
    if not {"content-type", "host", "x-amz-date"} <= set(signed):
        return f"signed headers {signed}"
    host = handler.headers["Host"]
    request = AWSRequest(method="POST", url=f"http://{host}{handler.path}", data=body,
                         headers={name: handler.headers[name] for name in signed})
    request.context["timestamp"] = handler.headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials("testing", "testing", "testing"), "sagemaker", REGION)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                              request)
    return None if fields["Signature"] == expected else "the signature does not verify"


class RuntimeStandIn(BaseHTTPRequestHandler):
    """POST /endpoints/<name>/invocations-response-stream, checked, answered as an event stream."""

    protocol_version = "HTTP/1.1"
    problems: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        problem = self._problem(body)
        if problem:
            RuntimeStandIn.problems.append(problem)
            send_whole(self, 400, b'{"message": "%s"}' % problem.encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("X-Amzn-SageMaker-Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = tgi_events()
        # Parts cut through the events (SageMaker does not align them), one after another.
        parts = [events[i:i + 50] for i in range(0, len(events), 50)]
        if body == BROKEN:
            parts = parts[:2]
        for part in parts:
            self._chunk(payload_part(part))
            time.sleep(PART_PAUSE_S)
        if body == BROKEN:
            self._chunk(model_stream_error(ERROR_MESSAGE))
        self.wfile.write(b"0\r\n\r\n")

    def _problem(self, body: bytes) -> str | None:
        if self.path != f"/endpoints/{ENDPOINT}/invocations-response-stream":
            return f"path {self.path}"
        if self.headers.get("Content-Type") != "application/json":
            return f"content type {self.headers.get('Content-Type')}"
        if self.headers.get("X-Amzn-SageMaker-Accept") != "text/event-stream":
            return f"accept {self.headers.get('X-Amzn-SageMaker-Accept')}"
        return signature_problem(self, body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def runtime_url() -> Iterator[str]:
    RuntimeStandIn.problems = []
    with serving(RuntimeStandIn) as base_url:
        yield base_url


def test_a_streamed_payload_goes_through_invoke_endpoint_with_response_stream(runtime_url):
    # Fake credentials come from the environment (tests/aws/conftest.py): "testing".
    payloads = [
        LoadedPayload(GOOD, "application/json", "text/event-stream", 1.0, stream=True),
        LoadedPayload(BROKEN, "application/json", "text/event-stream", 1.0, stream=True),
    ]
    target = SageMakerTarget(ENDPOINT, REGION, runtime_url)
    with LoadGenerator(target, payloads, request_timeout=10) as generator:
        step = generator.step(rate=8.0, seconds=1.5, drain=5.0)
    assert RuntimeStandIn.problems == []
    rows = step.requests
    assert len(rows) == step.sent
    good, failed = rows[rows.ok], rows[~rows.ok]
    assert len(good) and len(failed)  # the seeded mix sent both
    assert (good.output_tokens == TOKENS).all() and good.tokens_reported.all()
    # The first token completes in part k, sent after k pauses; the last byte after them all.
    events = tgi_events()
    parts = -(-len(events) // 50)
    k = (events.index(b"\n\n") + 1) // 50
    assert (good.latency_ms >= 1000 * PART_PAUSE_S * (parts - 1)).all()
    assert (good.ttft_ms >= 1000 * PART_PAUSE_S * k).all()
    assert (good.ttft_ms < 0.5 * good.latency_ms).all()
    assert (failed.status == 200).all()
    assert all(
        error.startswith("StreamFailure: ModelStreamError: ") and ERROR_MESSAGE in error
        and "ModelInvocationTimeExceeded" in error
        for error in failed.error
    ), failed.error.tolist()
    assert failed.output_tokens.isna().all()
