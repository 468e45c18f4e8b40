"""The AWS smoke test of a streamed payload: InvokeEndpointWithResponseStream, decoded by boto3.

A loopback stand-in of the runtime answers the streaming path only (the non-streaming path is a
404), so a smoke test that took the wrong operation fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import boto3
import pytest
from harness.eventstream import model_stream_error, payload_part
from loopback import send_whole, serving

from rightsizer.aws.smoke import _invoke
from rightsizer.payloads import LoadedPayload
from rightsizer.smoke import NoAnswer

STREAMED = LoadedPayload(b'{"inputs": "hi", "stream": true}', "application/json", None, 1.0,
                         stream=True)
EVENTS = [b'data:{"token":{"text":" a"}}\n\n', b'data:{"token":{"text":" b"}}\n\n']


class StreamingRuntime(BaseHTTPRequestHandler):
    fail: ClassVar[bool] = False
    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.paths.append(self.path)
        if not self.path.endswith("/invocations-response-stream"):
            send_whole(self, 404, b"")
            return
        frames = [payload_part(EVENTS[0])]
        frames.append(model_stream_error("the model broke") if self.fail
                      else payload_part(EVENTS[1]))
        body = b"".join(frames)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("X-Amzn-SageMaker-Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    StreamingRuntime.paths = []
    with serving(StreamingRuntime) as base_url:
        yield boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=base_url)


def test_a_streamed_payload_is_smoke_tested_through_the_streaming_operation(runtime) -> None:
    StreamingRuntime.fail = False
    answer = _invoke(runtime, "rightsizer-llm", STREAMED)
    assert answer.status == 200 and answer.body == b"".join(EVENTS)
    assert StreamingRuntime.paths == ["/endpoints/rightsizer-llm/invocations-response-stream"]


def test_an_error_event_in_the_stream_fails_the_smoke_test_with_its_message(runtime) -> None:
    StreamingRuntime.fail = True
    with pytest.raises(NoAnswer, match="InvokeEndpointWithResponseStream failed with "
                       "ModelStreamError: the model broke"):
        _invoke(runtime, "rightsizer-llm", STREAMED)
