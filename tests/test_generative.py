"""The local generative endpoint (rightsizer.serving.generative), as a real server process on
127.0.0.1 started through LocalEndpoint: TGI's formats, streaming as tokens are produced, its
errors, and continuous batching measured with real clients."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from rightsizer.endpoints.local import LocalEndpoint
from rightsizer.schema import GenerativeModel, InstanceTypeSpec

REPO = Path(__file__).resolve().parent.parent
# Weights dominate an iteration (as in a real LLM), and each sequence's cache costs about a
# fifth of them at this prompt's length: batching pays, and inter-token latency grows with it.
MODEL = GenerativeModel(max_sequences=4, queue=2, max_new_tokens=16, weights_mb=64,
                        kv_kb_per_token=64)
PROMPT = "word " * 160  # 800 characters: 200 tokens


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with LocalEndpoint(MODEL, InstanceTypeSpec(instance_type="local.1cpu"),
                       model_root=REPO) as endpoint:
        endpoint.deploy()
        port = urlsplit(endpoint.url).port
        assert port is not None
        yield port


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def post(connection: http.client.HTTPConnection, body: Any) -> http.client.HTTPResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection.request("POST", "/invocations", data, {"Content-Type": "application/json"})
    return connection.getresponse()


def tgi(new_tokens: int | None = None, *, stream: bool = False, details: bool = True,
        prompt: str = PROMPT, seed: int | None = None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"details": details}
    if new_tokens is not None:
        parameters["max_new_tokens"] = new_tokens
    if seed is not None:
        parameters["seed"] = seed
    return {"inputs": prompt, "parameters": parameters, "stream": stream}


@dataclass
class Streamed:
    sent_at: float
    events: list[dict[str, Any]]
    arrived: list[float]  # when each event's line was read

    @property
    def inter_token_s(self) -> float:
        return (self.arrived[-1] - self.arrived[0]) / (len(self.arrived) - 1)


def read_stream(connection: http.client.HTTPConnection, body: dict[str, Any]) -> Streamed:
    sent_at = time.perf_counter()
    response = post(connection, body)
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    events, arrived = [], []
    while line := response.readline():
        if line.startswith(b"data:"):
            arrived.append(time.perf_counter())
            events.append(json.loads(line[len(b"data:"):]))
        else:
            assert line == b"\n"  # events are separated by one blank line, nothing else
    return Streamed(sent_at, events, arrived)


def test_ping(port: int) -> None:
    connection = connect(port)
    connection.request("GET", "/ping")
    assert connection.getresponse().status == 200


def test_whole_response_is_tgi_json_with_the_asked_token_count(port: int) -> None:
    response = post(connect(port), tgi(12))
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    [generation] = json.loads(response.read())
    details = generation["details"]
    assert details["finish_reason"] == "length"
    assert details["generated_tokens"] == 12
    assert "".join(t["text"] for t in details["tokens"]) == generation["generated_text"]
    assert len(generation["generated_text"].split()) == 12  # one word per token


def test_without_details_or_a_token_count_the_models_default_applies(port: int) -> None:
    response = post(connect(port), {"inputs": "Hello"})
    [generation] = json.loads(response.read())
    assert "details" not in generation
    assert len(generation["generated_text"].split()) == MODEL.max_new_tokens


def test_the_same_seed_gives_the_same_text(port: int) -> None:
    def text(seed: int) -> str:
        return str(json.loads(post(connect(port), tgi(8, seed=seed)).read())[0]["generated_text"])

    assert text(7) == text(7)
    assert text(7) != text(8)


def test_streamed_events_arrive_as_tokens_are_produced(port: int) -> None:
    streamed = read_stream(connect(port), tgi(40, stream=True))
    events = streamed.events
    assert len(events) == 40  # one event per token
    assert [e["index"] for e in events] == list(range(1, 41))
    assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])
    last = events[-1]
    assert last["details"]["finish_reason"] == "length"
    assert last["details"]["generated_tokens"] == 40
    assert last["details"]["input_length"] == 200  # ceil(800 characters / 4)
    assert last["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert {"id", "text", "logprob", "special"} <= events[0]["token"].keys()
    # Written one by one: the first well before the last (not one body at the end).
    first_s = streamed.arrived[0] - streamed.sent_at
    last_s = streamed.arrived[-1] - streamed.sent_at
    assert first_s < 0.4 * last_s, (first_s, last_s)


@pytest.mark.parametrize(("body", "field"), [
    ({"parameters": {"max_new_tokens": 4}}, "inputs"),
    ({"inputs": 42}, "inputs"),
    ({"inputs": "Hi", "parameters": {"max_new_tokens": 0}}, "parameters.max_new_tokens"),
    ({"inputs": "Hi", "parameters": {"max_new_tokens": "4"}}, "parameters.max_new_tokens"),
    ({"inputs": "Hi", "stream": "yes"}, "stream"),
    (b"{not json", "body"),
])
def test_a_malformed_body_is_a_400_naming_the_field(port: int, body: Any, field: str) -> None:
    response = post(connect(port), body)
    assert response.status == 400
    error = json.loads(response.read())
    assert error["error"].startswith(f"{field}: "), error
    assert error["error_type"] == "validation"


def test_full_batch_and_queue_is_503_and_leaving_clients_free_their_places(port: int) -> None:
    # Long generations fill the batch (4) and the queue (2); each answer has begun (headers).
    holders = [connect(port) for _ in range(MODEL.max_sequences + MODEL.queue)]
    for holder in holders:
        assert post(holder, tgi(4000, stream=True)).status == 200
    refused = post(connect(port), tgi(4))
    assert refused.status == 503
    assert json.loads(refused.read())["error_type"] == "overloaded"
    # The decode loop is busy, yet /ping answers at once (the work is off the event loop).
    pinging = connect(port)
    started = time.perf_counter()
    pinging.request("GET", "/ping")
    assert pinging.getresponse().status == 200
    assert time.perf_counter() - started < 0.5
    for holder in holders:
        holder.close()
    deadline = time.monotonic() + 5
    while (status := post(connect(port), tgi(4)).status) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200


def run_clients(port: int, clients: int, requests_each: int) -> tuple[float, float]:
    """Closed-loop clients streaming 32-token answers: total tokens/s, mean inter-token s."""
    results: list[Streamed] = []

    def client() -> None:
        connection = connect(port)
        for _ in range(requests_each):
            results.append(read_stream(connection, tgi(32, stream=True)))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    tokens = sum(len(r.events) for r in results)
    assert tokens == 32 * clients * requests_each
    return tokens / elapsed, sum(r.inter_token_s for r in results) / len(results)


def test_continuous_batching_raises_throughput_and_each_tokens_latency(port: int) -> None:
    run_clients(port, 1, 1)  # warm
    # Interleaved, best of two: other processes on the machine only ever slow a run down.
    alone, batched = [], []
    for _ in range(2):
        alone.append(run_clients(port, 1, 5))
        batched.append(run_clients(port, 4, 5))
    alone_tokens_s, alone_itl_s = max(t for t, _ in alone), min(i for _, i in alone)
    batched_tokens_s, batched_itl_s = max(t for t, _ in batched), min(i for _, i in batched)
    figures = (alone_tokens_s, batched_tokens_s, alone_itl_s, batched_itl_s)
    assert batched_tokens_s > 1.8 * alone_tokens_s, figures
    assert batched_itl_s > 1.2 * alone_itl_s, figures
