"""The smoke test's rules, the same locally and on AWS: before any load is spent on an endpoint,
every sample payload must get, in time, a 2xx answer with a body whose content type is one the
payload's ``accept`` asks for.

Only the transport differs (an HTTP POST to a local endpoint, ``InvokeEndpoint`` on AWS): each
path turns one request into an ``Answer`` (or raises ``NoAnswer`` with the transport's own words)
and ``smoke_test`` applies the rules. A failure's message carries the endpoint's own words: the
model's status and message, and where its logs are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from rightsizer.payloads import LoadedPayload

# SageMaker's runtime gives up on a model after 60 s: slower than that cannot serve there.
ANSWER_TIMEOUT_SECONDS = 60.0
MAX_MESSAGE = 1500


class SmokeTestFailed(RuntimeError):
    """The endpoint did not answer a sample payload correctly; the message says how."""


class NoAnswer(Exception):
    """The request got no answer from the endpoint (timeout, refused, API error)."""


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered one payload."""

    status: int
    body: bytes
    content_type: str
    seconds: float
    logs: str | None = None  # where the endpoint's own logs are, when known


Invoke = Callable[[LoadedPayload], Answer]


def no_answer_within(seconds: float) -> str:
    return (
        f"no answer within {seconds:g} s (SageMaker's runtime gives up after "
        f"{ANSWER_TIMEOUT_SECONDS:g} s): the model is too slow for this payload or hung"
    )


def accepts(accept: str, content_type: str) -> bool:
    """Does ``content_type`` match one of ``accept``'s media ranges (``*/*``, ``image/*``)?"""
    got = content_type.split(";")[0].strip().lower()
    for pattern in (a.split(";")[0].strip().lower() for a in accept.split(",")):
        if pattern in ("*/*", got) or (pattern.endswith("/*") and got.startswith(pattern[:-1])):
            return True
    return False


def answer_problem(answer: Answer, payload: LoadedPayload) -> str | None:
    """What is wrong with ``answer`` to ``payload``, or None when it passes every rule."""
    if answer.seconds > ANSWER_TIMEOUT_SECONDS:
        return f"answered after {answer.seconds:.1f} s: {no_answer_within(ANSWER_TIMEOUT_SECONDS)}"
    if not 200 <= answer.status < 300:
        text = answer.body[:1000].decode(errors="replace")
        where = f" (container logs: {answer.logs})" if answer.logs else ""
        return f"the model answered {answer.status}: {text}{where}"
    if not answer.body:
        return "the endpoint answered with an empty body"
    if payload.accept and not accepts(payload.accept, answer.content_type):
        return (
            f"the endpoint answered with Content-Type {answer.content_type!r}, but the payload "
            f"asks for {payload.accept!r}: check the payload's 'accept' or the model's "
            f"output_fn. First bytes: {answer.body[:200]!r}"
        )
    return None


def smoke_test(
    endpoint: str,
    invoke: Invoke,
    payloads: Sequence[LoadedPayload],
    *,
    seconds_left: Callable[[], float] = lambda: math.inf,
    answer_bound_seconds: float = ANSWER_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Send every payload in turn; raise ``SmokeTestFailed`` at the first that fails a rule.

    Each payload after the first is sent only while ``seconds_left()`` still holds its worst
    case (``answer_bound_seconds``), so a caller with a hard limit (a Lambda's Timeout) fails
    here, saying why, instead of being cut off. The first is always sent: the caller's limit
    must hold one answer (tests/test_bad_inputs.py checks the smoke Lambda's Timeout does).
    """
    started = time.perf_counter()
    answers: list[Answer] = []
    for index, payload in enumerate(payloads):
        left = seconds_left()
        if answers and left < answer_bound_seconds:
            _fail(
                endpoint, index,
                f"not sent: {left:.0f} s of the smoke test's time are left and an answer may "
                f"take {answer_bound_seconds:g} s ({index} of {len(payloads)} payloads answered "
                f"in {time.perf_counter() - started:.0f} s); use fewer or faster payloads, or "
                "raise the smoke test's time limit",
            )
        try:
            answer = invoke(payload)
        except NoAnswer as exc:
            _fail(endpoint, index, str(exc))
        problem = answer_problem(answer, payload)
        if problem:
            _fail(endpoint, index, problem)
        answers.append(answer)
    return {
        "endpoint": endpoint,
        "payloads": len(answers),
        "content_types": [a.content_type for a in answers],
        "response_bytes": [len(a.body) for a in answers],
        "latency_ms": [round(a.seconds * 1000, 1) for a in answers],
    }


def _fail(endpoint: str, index: int, problem: str) -> NoReturn:
    raise SmokeTestFailed(f"smoke test of {endpoint}, payloads[{index}]: {problem}"[:MAX_MESSAGE])
