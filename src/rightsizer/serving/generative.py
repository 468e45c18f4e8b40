"""A local text-generation server shaped like Hugging Face TGI on SageMaker, with real CPU work.

Continuous batching, as TGI does it: each instance runs one decode loop on its own thread. An
iteration produces one token for every sequence in the batch (at most ``max_sequences``); more
requests wait in a queue of ``queue`` (beyond it: 503). Waiting requests join the batch at the
start of an iteration, after a prefill that pauses decoding (as TGI's does) and yields their
first token.

The work is real and LLM-shaped (numpy float32, one BLAS thread per worker thread):

- each decode iteration reads the ``weights_mb`` weights once (a matrix-vector product:
  memory-bound, paid once whatever the batch), and for each sequence its KV cache,
  ``kv_kb_per_token`` per token of its context (prompt and tokens so far), like attention;
- a prefill reads the weights once per ``PREFILL_CHUNK_TOKENS`` prompt tokens (a chunked
  prefill costs about one decode step per chunk) and writes the prompt's KV cache.

So tokens per second rise with concurrency until the batch is full, while each sequence's
inter-token latency grows; past that, requests queue and time to first token climbs. An
iteration's work is split across the instance's threads (row slices), so ``local.2cpu`` does
about twice the work of ``local.1cpu`` per second. The work runs off the event loop (numpy
releases the GIL), which keeps ``/ping`` and streamed writes responsive.

Requests are TGI's: ``{"inputs": "...", "parameters": {"max_new_tokens": N, "details": true,
"seed": S}, "stream": true}``. The prompt's length in tokens is approximated as ceil(characters
/ 4) (``rightsizer.tokens``); the output has ``max_new_tokens`` tokens (else the model's), each
one word of a fixed vocabulary, drawn from the request's seed (else one drawn from the server's
``--seed``): the same seed gives the same text. Finish reason is always "length".

- streamed: ``text/event-stream``, one ``data:{"index":..,"token":{...},"generated_text":null,
  "details":null}`` event per token, sent as soon as its iteration ends; the last event carries
  ``generated_text`` and (with ``details``) ``{"finish_reason":"length","generated_tokens":N,
  "seed":..,"input_length":..}``;
- whole: ``[{"generated_text": "...", "details": {...}}]`` (details only when asked).

A malformed body is a 400 naming the field, a full queue a 503, both as TGI's ``{"error": ...,
"error_type": ...}``. A client that disconnects frees its sequence at the next iteration.

    python -m rightsizer.serving.generative --port P --cpus 0,1 --max-sequences 8 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import queue
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rightsizer.schema import GenerativeModel, format_errors
from rightsizer.serving.asgi import (
    Receive,
    Reply,
    Scope,
    Send,
    json_reply,
    reply,
    send_reply,
    serve,
)
from rightsizer.serving.process import (
    core_for,
    exit_if_port_taken,
    exit_with_parent,
    limit_native_threads,
    parse_cpus,
    pin,
)
from rightsizer.tokens import approximate_tokens

if TYPE_CHECKING:  # numpy itself is imported once the BLAS thread count is set (DecodeWork)
    import numpy as np
    from numpy.typing import NDArray

    Matrix = NDArray[np.float32]

# The weights matrix's width; its height follows from weights_mb.
WEIGHT_COLUMNS = 1024
# Prompt tokens a prefill processes per pass over the weights.
PREFILL_CHUNK_TOKENS = 64
FLOAT32_BYTES = 4
# What the tokens spell: one word (with its leading space) per token.
_WORDS = (
    "the of and to in is that for it as with was on be by this are or from at an which "
    "model load token request latency endpoint instance batch queue stream cost price "
    "rate second memory cache weight layer attention prompt answer server client core "
    "thread value number time first last next each every more less than then when where"
)
VOCABULARY = tuple(f" {word}" for word in _WORDS.split())
DISCONNECTED = -1  # put in a sequence's progress queue when its client has gone

PONG = json_reply(200, {"status": "healthy"})
NOT_FOUND = json_reply(404, {"error": "the endpoint serves /ping and /invocations",
                             "error_type": "not_found"})
OVERLOADED = json_reply(503, {"error": "Model is overloaded: every sequence of the batch is "
                                       "busy and the queue is at its bound",
                              "error_type": "overloaded"})
STREAM_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


# --- the request --------------------------------------------------------------------------------

class GenerateParameters(BaseModel):
    # TGI accepts many sampling parameters; those that change nothing here are ignored.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    max_new_tokens: int | None = Field(None, ge=1, le=4096)
    details: bool = False
    seed: int | None = Field(None, ge=0)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    inputs: str = Field(min_length=1)
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)
    stream: bool = False


class BadRequest(ValueError):
    """The body is not a TGI request; the message names the field."""


def parse_request(body: bytes) -> GenerateRequest:
    try:
        return GenerateRequest.model_validate_json(body)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise BadRequest(f"body: not a JSON document ({exc.errors()[0]['msg']})") from None
        raise BadRequest(format_errors(exc).replace("\n", "; ")) from None


def tgi_error(status: int, message: str, error_type: str) -> Reply:
    return json_reply(status, {"error": message, "error_type": error_type})


# --- the generated text -------------------------------------------------------------------------

@dataclass(frozen=True)
class Generation:
    """What one request generates, and how TGI writes it."""

    token_ids: list[int]
    input_length: int
    seed: int | None  # reported back only when the request gave it
    details: bool

    @classmethod
    def draw(cls, request: GenerateRequest, new_tokens: int, fallback_seed: int) -> Generation:
        seed = request.parameters.seed
        rng = random.Random(fallback_seed if seed is None else seed)
        return cls(
            token_ids=[rng.randrange(len(VOCABULARY)) for _ in range(new_tokens)],
            input_length=approximate_tokens(len(request.inputs)),
            seed=seed,
            details=request.parameters.details,
        )

    @property
    def text(self) -> str:
        return "".join(VOCABULARY[i] for i in self.token_ids)

    def token(self, index: int) -> dict[str, Any]:
        token_id = self.token_ids[index]
        return {"id": token_id, "text": VOCABULARY[token_id], "logprob": 0.0, "special": False}

    def event(self, index: int) -> bytes:
        """The server-sent event of token ``index``; the last one closes the generation."""
        last = index == len(self.token_ids) - 1
        details = None
        if last and self.details:
            details = {"finish_reason": "length", "generated_tokens": len(self.token_ids),
                       "seed": self.seed, "input_length": self.input_length}
        document = {"index": index + 1, "token": self.token(index),
                    "generated_text": self.text if last else None, "details": details}
        return b"data:" + _compact(document) + b"\n\n"

    def whole(self) -> bytes:
        document: dict[str, Any] = {"generated_text": self.text}
        if self.details:
            document["details"] = {
                "finish_reason": "length", "generated_tokens": len(self.token_ids),
                "seed": self.seed, "prefill": [],
                "tokens": [self.token(i) for i in range(len(self.token_ids))],
            }
        return _compact([document])


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# --- the decode loop ----------------------------------------------------------------------------

@dataclass(eq=False)
class Sequence:
    """One request in an engine. The loop thread sets ``cancelled``; the engine owns the rest,
    and reports the tokens done so far into ``progress`` through the loop."""

    prompt_tokens: int
    new_tokens: int
    loop: asyncio.AbstractEventLoop
    progress: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    done: int = 0
    cache: Matrix | None = None  # its KV cache: a row per token of prompt and output
    scores: Matrix | None = None  # attention's output over that cache, a value per row

    @property
    def context(self) -> int:
        return self.prompt_tokens + self.done

    @property
    def finished(self) -> bool:
        return self.cancelled or self.done >= self.new_tokens


def share(length: int, part: int, parts: int) -> slice:
    """Part ``part`` of ``parts`` near-equal row ranges of ``length`` rows."""
    return slice(length * part // parts, length * (part + 1) // parts)


class DecodeWork:
    """The arrays an instance reads, and each step's work split into row slices, one a thread."""

    def __init__(self, model: GenerativeModel, threads: int, seed: int | None) -> None:
        import numpy as np  # here, after main() limited BLAS to one thread per caller

        self.np = np
        rng = np.random.default_rng(seed)
        rows = max(threads, round(model.weights_mb * 2**20 / FLOAT32_BYTES / WEIGHT_COLUMNS))
        self.weights: Matrix = rng.random((rows, WEIGHT_COLUMNS), dtype=np.float32)
        self.activation: Matrix = rng.random(WEIGHT_COLUMNS, dtype=np.float32)
        self.output: Matrix = np.empty(rows, dtype=np.float32)
        self.kv_width = max(1, round(model.kv_kb_per_token * 1024 / FLOAT32_BYTES))
        self.query: Matrix = rng.random(self.kv_width, dtype=np.float32)
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads, "decode") if threads > 1 else None

    def _in_parallel(self, part: Callable[[int], None]) -> None:
        if self.pool is None:
            part(0)
        else:
            list(self.pool.map(part, range(self.threads)))

    def _read_weights(self, part: int, passes: int = 1) -> None:
        rows = share(len(self.weights), part, self.threads)
        for _ in range(passes):
            self.np.matmul(self.weights[rows], self.activation, out=self.output[rows])

    def prefill(self, joining: list[Sequence]) -> None:
        """Allocate and write each joining sequence's KV cache for its prompt."""
        for sequence in joining:
            length = sequence.prompt_tokens + sequence.new_tokens
            sequence.cache = self.np.empty((length, self.kv_width), self.np.float32)
            sequence.scores = self.np.empty(length, self.np.float32)
        passes = sum(math.ceil(s.prompt_tokens / PREFILL_CHUNK_TOKENS) for s in joining)

        def part(index: int) -> None:
            self._read_weights(index, passes)
            for sequence in joining:
                assert sequence.cache is not None
                sequence.cache[share(sequence.prompt_tokens, index, self.threads)] = 1.0

        self._in_parallel(part)

    def decode(self, batch: list[Sequence]) -> None:
        """One iteration: the last token of each sequence enters its cache, then the weights
        and every sequence's whole context are read."""
        for sequence in batch:
            assert sequence.cache is not None
            sequence.cache[sequence.context - 1] = 1.0

        def part(index: int) -> None:
            self._read_weights(index)
            for sequence in batch:
                assert sequence.cache is not None and sequence.scores is not None
                rows = share(sequence.context, index, self.threads)
                self.np.matmul(sequence.cache[rows], self.query, out=sequence.scores[rows])

        self._in_parallel(part)


class Engine:
    """One instance: its decode loop on a thread, fed through ``submit`` from the event loop."""

    def __init__(self, model: GenerativeModel, work: DecodeWork) -> None:
        self.model = model
        self.work = work
        self.load = 0  # admitted and not yet answered; read and written on the event loop only
        self.incoming: queue.SimpleQueue[Sequence] = queue.SimpleQueue()
        threading.Thread(target=self.run, name="decode-loop", daemon=True).start()

    @property
    def full(self) -> bool:
        return self.load >= self.model.max_sequences + self.model.queue

    def submit(self, sequence: Sequence) -> None:
        self.load += 1
        self.incoming.put(sequence)

    def run(self) -> None:
        batch: list[Sequence] = []
        while True:
            self.admit(batch)
            if batch:
                self.work.decode(batch)
                self.advance(batch)

    def admit(self, batch: list[Sequence]) -> None:
        """Prefill the waiting sequences that fit into the batch; wait for one if it is empty."""
        retire(batch)
        joining: list[Sequence] = [] if batch else [self.incoming.get()]
        while len(batch) + len(joining) < self.model.max_sequences:
            try:
                joining.append(self.incoming.get_nowait())
            except queue.Empty:
                break
        joining = [s for s in joining if not s.cancelled]  # their clients left while waiting
        if joining:
            self.work.prefill(joining)
            batch.extend(joining)
            self.advance(joining)
            retire(batch)  # those asking for one token only

    def advance(self, group: list[Sequence]) -> None:
        """Each sequence of ``group`` has one more token: tell their handlers, in one call
        to the event loop for the whole group."""
        reports: list[tuple[Sequence, int]] = []
        for sequence in group:
            sequence.done += 1
            reports.append((sequence, sequence.done))
            if sequence.finished:
                sequence.cache = sequence.scores = None  # its memory goes back at once
        if reports:
            reports[0][0].loop.call_soon_threadsafe(_deliver, reports)


def retire(batch: list[Sequence]) -> None:
    """Drop finished and abandoned sequences, freeing their places in the batch."""
    batch[:] = [s for s in batch if not s.finished]


def _deliver(reports: list[tuple[Sequence, int]]) -> None:
    for sequence, done in reports:
        sequence.progress.put_nowait(done)


# --- the HTTP side ------------------------------------------------------------------------------

class GenerativeApp:
    """The raw ASGI app: parse, pick the least loaded instance (or 503), stream or answer."""

    def __init__(self, model: GenerativeModel, instances: int, threads: int,
                 seed: int | None = None) -> None:
        self.model = model
        self.engines = [
            Engine(model, DecodeWork(model, threads, None if seed is None else seed + i))
            for i in range(instances)
        ]
        self.seeds = random.Random(seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; nothing else is served
        path = scope["path"]
        if path == "/invocations" and scope["method"] == "POST":
            await self.invoke(receive, send)
        elif path == "/ping":
            await send_reply(send, PONG)
        else:
            await send_reply(send, NOT_FOUND)

    async def invoke(self, receive: Receive, send: Send) -> None:
        try:
            request = parse_request(await read_body(receive))
        except BadRequest as exc:
            await send_reply(send, tgi_error(400, str(exc), "validation"))
            return
        engine = min(self.engines, key=lambda e: e.load)
        if engine.full:
            await send_reply(send, OVERLOADED)
            return
        new_tokens = request.parameters.max_new_tokens or self.model.max_new_tokens
        generation = Generation.draw(request, new_tokens, self.seeds.getrandbits(32))
        sequence = Sequence(generation.input_length, new_tokens, asyncio.get_running_loop())
        engine.submit(sequence)
        watcher = asyncio.create_task(watch_disconnect(receive, sequence))
        try:
            if request.stream:
                await stream(send, sequence, generation)
            else:
                await answer(send, sequence, generation)
        finally:
            watcher.cancel()
            sequence.cancelled = True  # a no-op when finished; frees it when the client left
            engine.load -= 1


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def watch_disconnect(receive: Receive, sequence: Sequence) -> None:
    """Wake the handler with DISCONNECTED when the client goes (after the body, ASGI's
    ``receive`` only ever answers ``http.disconnect``)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    sequence.cancelled = True
    sequence.progress.put_nowait(DISCONNECTED)


async def stream(send: Send, sequence: Sequence, generation: Generation) -> None:
    """One event per token, each written as soon as the loop hears of it."""
    await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
    sent = 0
    while sent < sequence.new_tokens:
        done = await sequence.progress.get()
        if done == DISCONNECTED:
            return
        events = b"".join(generation.event(i) for i in range(sent, done))
        sent = done
        await send({"type": "http.response.body", "body": events,
                    "more_body": sent < sequence.new_tokens})


async def answer(send: Send, sequence: Sequence, generation: Generation) -> None:
    done = 0
    while done < sequence.new_tokens:
        done = await sequence.progress.get()
        if done == DISCONNECTED:
            return
    await send_reply(send, reply(200, generation.whole(), "application/json"))


# --- the command line ---------------------------------------------------------------------------

def cli_args(model: GenerativeModel) -> list[str]:
    """The command-line flags that describe ``model`` (used by the local endpoint launcher)."""
    return [
        "--max-sequences", str(model.max_sequences),
        "--queue", str(model.queue),
        "--max-new-tokens", str(model.max_new_tokens),
        "--weights-mb", repr(model.weights_mb),
        "--kv-kb-per-token", repr(model.kv_kb_per_token),
    ]


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, GenerativeModel]:
    defaults = GenerativeModel()
    parser = argparse.ArgumentParser(
        prog="python -m rightsizer.serving.generative",
        description="Serve a TGI-shaped text generator with continuous batching.",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-sequences", type=int, default=defaults.max_sequences)
    parser.add_argument("--queue", type=int, default=defaults.queue)
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    parser.add_argument("--weights-mb", type=float, default=defaults.weights_mb)
    parser.add_argument("--kv-kb-per-token", type=float, default=defaults.kv_kb_per_token)
    parser.add_argument("--instances", type=int, default=1,
                        help="independent instances (each its own weights, batch and queue), "
                             "sharing the cores")
    parser.add_argument("--cpus", help="cores the process may run on, e.g. 0 or 0,1; each "
                                       "instance splits its work across its share of them")
    parser.add_argument("--seed", type=int, help="seed for the weights and the generated text")
    parser.add_argument("--parent-pid", type=int,
                        help="exit when this process (the launcher) is gone")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances: give 1 or more")
    try:
        model = GenerativeModel(
            max_sequences=args.max_sequences, queue=args.queue,
            max_new_tokens=args.max_new_tokens, weights_mb=args.weights_mb,
            kv_kb_per_token=args.kv_kb_per_token,
        )
    except ValidationError as exc:
        parser.error(format_errors(exc))
    return args, model


def main(argv: list[str] | None = None) -> None:
    args, model = parse_args(argv)
    limit_native_threads()  # before numpy is imported: our own threads are the parallelism
    exit_if_port_taken(args.port)
    exit_with_parent(args.parent_pid)
    cpus = parse_cpus(args.cpus, 1)
    if args.cpus:
        # Before the decode threads start: they inherit this thread's cores.
        pin({core_for(i, cpus) for i in range(len(cpus))})
    threads = max(1, len(cpus) // args.instances)
    serve(GenerativeApp(model, args.instances, threads, args.seed), args.port)


if __name__ == "__main__":
    main()
