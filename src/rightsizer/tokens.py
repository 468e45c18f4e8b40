"""Output tokens of a response, counted without a tokenizer or a model (pure).

Where the container reports its own figures they are used: TGI's and LMI's ``details``
(``generated_tokens``), or one streamed event per token (TGI's server-sent events, LMI's JSON
lines: a ``token`` object each). Otherwise the count is approximated from the generated text
at ``CHARS_PER_TOKEN`` characters per token, OpenAI's rule of thumb for English text (about 4
characters per token); such a count is marked as not reported.

Only a response that carries generated text is counted: a JSON document with a
``generated_text``, ``outputs`` or ``text`` field, or a streamed body. A classic model's
response (class scores, an embedding, an image) has no tokens (NaN). The check for those
fields starts with a substring test on the raw bytes, so that the load generator can run it on
every response at thousands of responses per second.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

CHARS_PER_TOKEN = 4
# Byte strings one of the generated-text fields contains (``text"`` ends both "text" and
# "generated_text"): a response without any is not parsed at all.
_TEXT_MARKERS = (b'text"', b'"outputs"')
_TEXT_FIELDS = ("generated_text", "outputs", "text")


class TokenCount(NamedTuple):
    tokens: float  # NaN when the response carries no generated text
    reported: bool  # from the container's own figures, not approximated from the text


NO_COUNT = TokenCount(math.nan, False)


def approximate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters of generated text, by OpenAI's rule of thumb."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def count_response_tokens(body: bytes) -> TokenCount:
    """Output tokens of a whole (not streamed) response body."""
    if not any(marker in body for marker in _TEXT_MARKERS):
        return NO_COUNT
    try:
        document = json.loads(body)
    except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
        return NO_COUNT
    # TGI answers a list of one generation per input; LMI and others a single object.
    generations = document if isinstance(document, list) else [document]
    counts = [_generation_tokens(g) for g in generations if isinstance(g, dict)]
    counted = [c for c in counts if not math.isnan(c.tokens)]
    if not counted:
        return NO_COUNT
    return TokenCount(sum(c.tokens for c in counted), all(c.reported for c in counted))


def _generation_tokens(generation: dict[str, Any]) -> TokenCount:
    reported = reported_tokens(generation)
    if reported is not None:
        return TokenCount(reported, True)
    text = generated_text(generation)
    return NO_COUNT if text is None else TokenCount(approximate_tokens(len(text)), False)


def reported_tokens(document: dict[str, Any]) -> int | None:
    """``details.generated_tokens`` (TGI, LMI), when the container gives it."""
    details = document.get("details")
    if not isinstance(details, dict):
        return None
    tokens = details.get("generated_tokens")
    # bool is an int; LMI reports null on an error.
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None


def generated_text(document: dict[str, Any]) -> str | None:
    """The text of the first generated-text field present: a string or a list of strings."""
    for field in _TEXT_FIELDS:
        value = document.get(field)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return "".join(value)
    return None


class StreamTokenParser:
    """Counts the tokens of a streamed response, fed its bytes in arrival order.

    Understands TGI's server-sent events (``data:{"token": {...}, ...}``, one event per token;
    the last carries ``details.generated_tokens``, which wins), LMI's JSON lines (the same
    objects one per line, or ``{"outputs": [...]}``/``{"generated_text": ...}`` text chunks)
    and anything else as plain text (approximated). Chunks may split lines and events
    anywhere. ``first_token_at`` is the ``at`` of the chunk that completed the first token.
    An error the container sends inside the stream (TGI's ``{"error": ...}`` event, LMI's
    ``finish_reason`` "error") is kept in ``error``.
    """

    def __init__(self) -> None:
        self.first_token_at: float | None = None
        self.error: str | None = None
        self._pending = b""
        self._event: list[str] = []  # the data lines of the server-sent event being read
        self._token_events = 0
        self._text_chars = 0
        self._reported: int | None = None

    def feed(self, data: bytes, at: float) -> None:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line.rstrip(b"\r").decode("utf-8", "replace"), at)

    def close(self, at: float) -> TokenCount:
        """The end of the stream: what is left is read, and the count returned."""
        if self._pending:
            self._line(self._pending.rstrip(b"\r").decode("utf-8", "replace"), at)
            self._pending = b""
        self._dispatch_event(at)
        return self.count()

    def count(self) -> TokenCount:
        if self._reported is not None:
            return TokenCount(self._reported, True)
        if self._token_events:
            return TokenCount(self._token_events, True)
        if self._text_chars:
            return TokenCount(approximate_tokens(self._text_chars), False)
        return NO_COUNT

    def _line(self, line: str, at: float) -> None:
        if line.startswith("data:"):
            self._event.append(line[5:].removeprefix(" "))
        elif not line:
            self._dispatch_event(at)
        elif self._event or line.startswith((":", "event:", "id:", "retry:")):
            pass  # the other fields of a server-sent event say nothing about tokens
        else:
            self._chunk(line, at)

    def _dispatch_event(self, at: float) -> None:
        if self._event:
            data, self._event = "\n".join(self._event), []
            if data != "[DONE]":  # OpenAI-style end marker
                self._chunk(data, at)

    def _chunk(self, text: str, at: float) -> None:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            self._document(document, at)
        elif text:
            self._text(len(text), at)

    def _document(self, document: dict[str, Any], at: float) -> None:
        self._error_of(document)
        reported = reported_tokens(document)
        if reported is not None:
            self._reported = reported
        if isinstance(document.get("token"), dict):
            self._token_events += 1
            self._first_token(at)
            return
        text = generated_text(document)
        # A text chunk; once tokens come as events, a generated_text is their summary.
        if text and not self._token_events:
            self._text(len(text), at)

    def _error_of(self, document: dict[str, Any]) -> None:
        if isinstance(document.get("error"), str):
            self.error = document["error"]
        details = document.get("details")
        if isinstance(details, dict) and details.get("finish_reason") == "error":
            self.error = "the container ended the generation with finish_reason 'error'"

    def _text(self, chars: int, at: float) -> None:
        self._text_chars += chars
        self._first_token(at)

    def _first_token(self, at: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = at
