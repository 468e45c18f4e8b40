"""Streamed responses through real Locust against a real loopback server that streams tokens.

The server (stdlib, threads, HTTP/1.1 chunked) writes TGI's server-sent events one token at a
time with a pause between them, as a container's /invocations does when asked to stream. The
client is Locust's own FastHttpUser client, in a separate interpreter (Locust patches the
process with gevent on import, which pytest's must not suffer), and then the real
LoadGenerator with its worker processes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from loopback import send_whole, serving

from rightsizer.loadgen.processes import LoadGenerator
from rightsizer.loadgen.target import HttpTarget
from rightsizer.payloads import LoadedPayload

TOKENS = 10
FIRST_TOKEN_S = 0.15  # "prefill": headers go at once, the first token after this
BETWEEN_TOKENS_S = 0.05
STREAM_BODY = b'{"inputs": "Tell me", "parameters": {"max_new_tokens": 10}, "stream": true}'
WHOLE_BODY = b'{"inputs": "Tell me", "parameters": {"details": true}}'
CLASSIC_BODY = b'{"pixels": [0, 1]}'
BUSY_BODY = b'{"inputs": "busy", "stream": true}'
CUT_BODY = b'{"inputs": "cut", "stream": true}'
WHOLE_TOKENS = 7


def sse_event(index: int) -> bytes:
    last = index == TOKENS - 1
    event = {
        "index": index,
        "token": {"id": index, "text": f" w{index}", "logprob": -0.1, "special": False},
        "generated_text": "..." if last else None,
        "details": {"finish_reason": "length", "generated_tokens": TOKENS} if last else None,
    }
    return b"data:" + json.dumps(event).encode() + b"\n\n"


class TokenServer(BaseHTTPRequestHandler):
    """POST /invocations: a stream of SSE tokens, a whole TGI answer, or a classic one."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        TokenServer.seen.append(dict(self.headers))
        if body == STREAM_BODY:
            self._stream()
        elif body == BUSY_BODY:
            send_whole(self, 503, b'{"error": "Model is overloaded"}')
        elif body == CUT_BODY:
            self._stream(cut=True)
        elif body == WHOLE_BODY:
            send_whole(self, 200, json.dumps([{"generated_text": "x" * 40, "details": {
                "generated_tokens": WHOLE_TOKENS}}]).encode())
        else:
            send_whole(self, 200, b'{"predictions": [0.2, 0.8]}')

    def _stream(self, cut: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        time.sleep(FIRST_TOKEN_S)
        for index in range(2 if cut else TOKENS):
            if index:
                time.sleep(BETWEEN_TOKENS_S)
            chunk = sse_event(index)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        if cut:  # the server goes away in the middle of the answer
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def token_server() -> Iterator[str]:
    TokenServer.seen = []
    with serving(TokenServer) as base_url:
        yield base_url


# One streamed request with Locust's FastHttpUser client; prints what the request event saw
# and what Locust's own statistics recorded.
LOCUST_CLIENT = textwrap.dedent("""
    import json, math, sys
    from locust import FastHttpUser
    from locust.env import Environment
    from rightsizer.loadgen.streaming import UNCOMPRESSED, container_payloads, send_streamed

    class User(FastHttpUser):
        host = sys.argv[1]
        abstract = True

    env = Environment(user_classes=[User])
    env.create_local_runner()  # hooks its statistics to the request event
    fired = []
    env.events.request.add_listener(
        lambda **kw: fired.append({k: kw[k] for k in ("response_time", "name")}
                                  | {"exception": repr(kw["exception"]),
                                     "context": dict(kw["context"])}))
    context = {"scheduled": 0.0}
    headers = {"Content-Type": "application/json", "Accept": "*/*", **UNCOMPRESSED}
    send_streamed(User(env).client, "/invocations", sys.argv[2].encode(), headers, context,
                  container_payloads)
    stats = env.stats.get("invocations", "POST")
    print(json.dumps({"fired": fired, "locust_requests": stats.num_requests,
                      "locust_max_ms": stats.max_response_time}, default=str))
""")


def test_a_streamed_request_has_ttft_tokens_and_whole_latency(token_server):
    done = subprocess.run(
        [sys.executable, "-c", LOCUST_CLIENT, token_server, STREAM_BODY.decode()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    [event] = result["fired"]  # one request event: Locust did not report it at the headers
    assert event["exception"] == "None" and event["name"] == "invocations"
    context = event["context"]
    latency, ttft = event["response_time"], context["ttft_ms"]
    stream_ms = 1000 * (FIRST_TOKEN_S + (TOKENS - 1) * BETWEEN_TOKENS_S)
    assert stream_ms <= latency < stream_ms + 500  # to the last byte, not to the headers
    assert 1000 * FIRST_TOKEN_S <= ttft < 1000 * FIRST_TOKEN_S + 150  # first token, not headers
    assert context["output_tokens"] == TOKENS and context["tokens_reported"] is True
    itl = (latency - ttft) / (TOKENS - 1)
    assert 1000 * BETWEEN_TOKENS_S <= itl < 1.5 * 1000 * BETWEEN_TOKENS_S
    # Locust's statistics (its CSVs) saw the same whole-request latency, once.
    assert result["locust_requests"] == 1
    assert result["locust_max_ms"] == pytest.approx(latency, abs=1)
    assert TokenServer.seen[0]["Accept-Encoding"] == "identity"


def test_the_load_generator_records_token_fields_per_request(token_server):
    payloads = [
        LoadedPayload(STREAM_BODY, "application/json", None, 1.0, stream=True),
        LoadedPayload(WHOLE_BODY, "application/json", None, 1.0),
        LoadedPayload(CLASSIC_BODY, "application/json", None, 1.0),
    ]
    with LoadGenerator(HttpTarget(token_server), payloads, request_timeout=10) as generator:
        step = generator.step(rate=12.0, seconds=1.5, drain=5.0)
    rows = step.requests
    assert len(rows) == step.sent and rows.ok.all(), rows
    streamed = rows[rows.ttft_ms.notna()]
    whole = rows[rows.ttft_ms.isna()]
    assert len(streamed) and len(whole)  # the seeded mix sent both kinds
    assert (streamed.output_tokens == TOKENS).all() and streamed.tokens_reported.all()
    assert (streamed.ttft_ms >= 1000 * FIRST_TOKEN_S).all()
    assert (streamed.latency_ms - streamed.ttft_ms >= 1000 * BETWEEN_TOKENS_S * 8).all()
    counted = whole[whole.output_tokens.notna()]
    classic = whole[whole.output_tokens.isna()]
    assert len(counted) and len(classic)
    assert (counted.output_tokens == WHOLE_TOKENS).all() and counted.tokens_reported.all()
    assert not classic.tokens_reported.any()
    assert all(math.isnan(t) for t in classic.output_tokens)


def test_a_refused_or_broken_stream_is_a_failed_request(token_server):
    payloads = [
        LoadedPayload(BUSY_BODY, "application/json", None, 1.0, stream=True),
        LoadedPayload(CUT_BODY, "application/json", None, 1.0, stream=True),
    ]
    with LoadGenerator(HttpTarget(token_server), payloads, request_timeout=10) as generator:
        step = generator.step(rate=8.0, seconds=1.0, drain=5.0)
    rows = step.requests
    assert len(rows) == step.sent and not rows.ok.any()
    busy, cut = rows[rows.status == 503], rows[rows.status == 200]
    assert len(busy) and len(cut) and len(busy) + len(cut) == len(rows)
    assert all(e == 'HTTP 503: {"error": "Model is overloaded"}' for e in busy.error)
    assert cut.output_tokens.isna().all() and cut.ttft_ms.isna().all()
    # Named by what broke (geventhttpclient: "HTTPParseError: Incomplete response."), not by
    # the 200 that started it.
    assert all(e and not e.startswith("HTTP 200") for e in cut.error), cut.error.tolist()
