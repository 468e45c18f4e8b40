"""Counting output tokens without a tokenizer: whole responses and streams (pure).

The stream fixtures follow the formats the servers document: TGI's server-sent events
(``data:{"index", "token": {"id", "text", "logprob", "special"}, "generated_text",
"details"}``, details only on the last event) and LMI's JSON lines (``{"token": {"id",
"text", "log_prob"}}`` per line, the last with ``generated_text`` and ``details``).
"""

from __future__ import annotations

import json
import math

import pytest

from rightsizer.tokens import (
    NO_COUNT,
    StreamTokenParser,
    TokenCount,
    approximate_tokens,
    count_response_tokens,
)

WORDS = ["Deep", " Learning", " is", " a", " really", " cool", " field", "."]


def tgi_event(index: int, text: str, *, last: bool = False, details: bool = True) -> bytes:
    event: dict[str, object] = {
        "index": index,
        "token": {"id": 100 + index, "text": text, "logprob": -0.1, "special": False},
        "generated_text": None,
        "details": None,
    }
    if last:
        event["generated_text"] = "".join(WORDS)
        if details:
            event["details"] = {"finish_reason": "length", "generated_tokens": 42, "seed": None}
    return b"data:" + json.dumps(event).encode() + b"\n\n"


def tgi_stream(details: bool = True) -> list[bytes]:
    last = len(WORDS) - 1
    return [tgi_event(i, w, last=i == last, details=details) for i, w in enumerate(WORDS)]


def lmi_lines() -> list[bytes]:
    lines = [{"token": {"id": i, "text": w, "log_prob": -0.5}} for i, w in enumerate(WORDS)]
    lines[-1].update(generated_text="".join(WORDS),
                     details={"finish_reason": "length", "generated_tokens": 8, "inputs": "x"})
    return [json.dumps(line).encode() + b"\n" for line in lines]


def parse(chunks: list[bytes]) -> tuple[StreamTokenParser, TokenCount]:
    """Feed ``chunks`` at times 1, 2, 3, ...; the parser and its count at the end."""
    parser = StreamTokenParser()
    for at, chunk in enumerate(chunks, start=1):
        parser.feed(chunk, float(at))
    return parser, parser.close(float(len(chunks) + 1))


def test_tgi_stream_details_win_over_the_event_count():
    parser, count = parse(tgi_stream(details=True))
    assert count == TokenCount(42, True)
    assert parser.first_token_at == 1.0 and parser.error is None


def test_tgi_stream_without_details_counts_one_token_per_event():
    _, count = parse(tgi_stream(details=False))
    assert count == TokenCount(len(WORDS), True)


def test_tgi_stream_split_anywhere_counts_the_same_and_times_the_completed_token():
    whole = b"".join(tgi_stream(details=False))
    # Cut inside the first event's JSON, then inside the blank line that ends an event.
    cut = whole.index(b'"text"') + 3
    end_of_first = whole.index(b"\n\n") + 1
    chunks = [whole[:cut], whole[cut:end_of_first], whole[end_of_first:]]
    parser, count = parse(chunks)
    assert count == TokenCount(len(WORDS), True)
    # The first event ends with its blank line, which completes in the third chunk.
    assert parser.first_token_at == 3.0


def test_one_byte_at_a_time_still_parses():
    whole = b"".join(tgi_stream(details=True))
    parser, count = parse([bytes([b]) for b in whole])
    assert count == TokenCount(42, True)
    # Fed at 1, 2, ...: the first token is complete with the blank line ending its event.
    assert parser.first_token_at == whole.index(b"\n\n") + 2


def test_sse_with_a_space_after_data_and_crlf_lines():
    body = b"".join(tgi_stream(details=False)).replace(b"data:", b"data: ")
    _, count = parse([body.replace(b"\n", b"\r\n")])
    assert count == TokenCount(len(WORDS), True)


def test_lmi_json_lines_use_details_on_the_last_line():
    parser, count = parse(lmi_lines())
    assert count == TokenCount(8, True)
    assert parser.first_token_at == 1.0


def test_lmi_json_lines_split_across_payload_parts():
    whole = b"".join(lmi_lines())
    _, count = parse([whole[i:i + 7] for i in range(0, len(whole), 7)])
    assert count == TokenCount(8, True)


def test_lmi_text_chunks_are_approximated():
    chunks = [json.dumps({"outputs": [w]}).encode() + b"\n" for w in WORDS]
    _, count = parse(chunks)
    assert count == TokenCount(approximate_tokens(len("".join(WORDS))), False)


def test_a_stream_error_event_is_kept():
    error = b'data:{"error":"Request failed during generation: CUDA OOM","error_type":"gen"}\n\n'
    parser, _ = parse([tgi_event(0, "Deep"), error])
    assert parser.error == "Request failed during generation: CUDA OOM"


def test_lmi_finish_reason_error_is_an_error():
    line = {"token": {"id": -1, "text": "", "log_prob": -1, "special_token": True},
            "generated_text": "", "details": {"finish_reason": "error", "generated_tokens": None}}
    parser, _ = parse([json.dumps(line).encode() + b"\n"])
    assert parser.error is not None and "finish_reason 'error'" in parser.error


def test_unknown_text_is_approximated_from_its_characters():
    parser, count = parse([b"Once upon ", b"a time there ", b"was a model."])
    assert count == TokenCount(approximate_tokens(len("Once upon a time there was a model.")),
                               False)
    assert parser.first_token_at == 4.0  # a line without its newline is read at the end


def test_a_stream_without_tokens_has_no_count_and_no_first_token():
    parser, count = parse([b'{"scores": [0.1, 0.9]}\n'])
    assert math.isnan(count.tokens) and not count.reported
    assert parser.first_token_at is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"generated_text": "Deep Learning", "details": {"generated_tokens": 3}}]',
         TokenCount(3, True)),
        (b'{"generated_text": "Deep Learning", "details": {"generated_tokens": 5}}',
         TokenCount(5, True)),
        (b'[{"generated_text": "Deep Learning is cool"}]', TokenCount(6, False)),  # 21 chars
        (b'[{"generated_text": "abcd"}, {"generated_text": "abcde"}]', TokenCount(3, False)),
        (b'{"outputs": ["abcd", "efgh"]}', TokenCount(2, False)),
        (b'{"text": ["hello world"]}', TokenCount(3, False)),
    ],
)
def test_whole_generated_responses(body, expected):
    assert count_response_tokens(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"predictions": [[0.1, 0.9]]}',  # classic JSON: not counted
        b"7",
        b"0.1,0.9\n",  # CSV
        b"\x89PNG\r\n\x1a\n binary",
        b'{"context": "no generated field here"}',  # passes the byte test, has no field
        b'not json but says "text" somewhere',
        b'{"generated_text": 12}',
    ],
)
def test_responses_that_are_not_generated_text_have_no_tokens(body):
    assert count_response_tokens(body) is NO_COUNT


def test_the_approximation_is_four_characters_a_token_rounded_up():
    assert [approximate_tokens(n) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
