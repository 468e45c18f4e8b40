"""The smoke test's rules (rightsizer.smoke), through the local HTTP adapter on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from loopback import send_whole, serving

from rightsizer.payloads import LoadedPayload
from rightsizer.pipeline import local_smoke_test
from rightsizer.smoke import Answer, SmokeTestFailed, accepts, answer_problem, smoke_test

JSON = LoadedPayload(b'{"x": 1}', "application/json", "application/json", 1.0)
PNG = LoadedPayload(b"\x89PNG", "image/png", "image/png", 1.0)


class Endpoint(BaseHTTPRequestHandler):
    """Answers JSON whatever is asked; ``/invocations`` with an empty body gets 400."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status, answer = (200, b'{"label": 3}') if body else (400, b"empty request")
        send_whole(self, status, answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    with serving(Endpoint) as base_url:
        yield base_url


def test_the_local_smoke_test_checks_every_payloads_content_type(url: str) -> None:
    assert local_smoke_test(url, [JSON]) is None
    problem = local_smoke_test(url, [JSON, PNG])
    assert problem is not None and "payloads[1]" in problem
    assert "Content-Type 'application/json', but the payload asks for 'image/png'" in problem


def test_the_local_smoke_test_says_when_nothing_answers() -> None:
    problem = local_smoke_test("http://127.0.0.1:9", [JSON])  # the discard port: refused
    assert problem is not None and "payloads[0]: no answer from the endpoint" in problem


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(503, b"out of memory", "", 0.1, "log-stream-x"),
         "the model answered 503: out of memory (container logs: log-stream-x)"),
        (Answer(200, b"", "application/json", 0.1), "empty body"),
        (Answer(200, b"{}", "application/json", 61.0), "answered after 61.0 s"),
        (Answer(200, b"<html>", "text/html", 0.1), "Content-Type 'text/html'"),
    ],
)
def test_each_rule_names_what_the_endpoint_did(answer: Answer, words: str) -> None:
    assert words in (answer_problem(answer, JSON) or "")


def test_accept_ranges_and_parameters() -> None:
    assert accepts("image/*", "image/png")
    assert accepts("text/csv, application/json;q=0.9", "application/json; charset=utf-8")
    assert accepts("*/*", "anything/at-all")
    assert not accepts("image/*", "application/json")


def test_a_payload_is_not_sent_when_its_answer_would_not_fit_the_time_left() -> None:
    sent: list[LoadedPayload] = []

    def invoke(payload: LoadedPayload) -> Answer:
        sent.append(payload)
        return Answer(200, b"{}", "application/json", 0.01)

    left = iter([100.0, 50.0])
    with pytest.raises(SmokeTestFailed, match=r"payloads\[1\]: not sent: 50 s .* left"):
        smoke_test("e", invoke, [JSON, JSON], seconds_left=lambda: next(left),
                   answer_bound_seconds=80)
    assert sent == [JSON]
    # The first payload goes even with less left: the caller's limit must hold one answer.
    assert smoke_test("e", invoke, [JSON], seconds_left=lambda: 1.0,
                      answer_bound_seconds=80)["payloads"] == 1
