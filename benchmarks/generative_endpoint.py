"""The local generative endpoint's shape: tokens/s, TTFT and ITL against concurrency.

The model and prompts of examples/local/generate-input.json, on local.1cpu and local.2cpu.
C closed-loop clients (C = 1, 4, 8) each send streamed TGI requests back to back for
``--seconds``; requests sent in the first second are left out. Shows what continuous batching
should: output tokens/s rise with concurrency while each sequence's inter-token latency grows
and, once the batch is full, time to first token climbs. Timed on this side of the socket, from
the server-sent events as they arrive (plain http.client threads, not the load engine).

    .venv/bin/python benchmarks/generative_endpoint.py [--seconds 8] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, table, write_section

from rightsizer.endpoints.local import LocalEndpoint
from rightsizer.schema import BenchmarkInput, GenerativeModel, InstanceTypeSpec

EXAMPLE = ROOT / "examples" / "local" / "generate-input.json"
CONCURRENCY = (1, 4, 8)
WARM_SECONDS = 1.0

Timed = tuple[float, list[float]]  # (sent, arrival time of each token event)


def stream_client(port: int, body: bytes, stop: threading.Event, out: list[Timed]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        sent = time.perf_counter()
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        arrivals = [time.perf_counter() for line in iter(response.readline, b"")
                    if line.startswith(b"data:")]
        if response.status == 200 and arrivals:
            out.append((sent, arrivals))


def measure(port: int, body: bytes, clients: int, seconds: float) -> dict[str, float]:
    stop, out = threading.Event(), []
    threads = [threading.Thread(target=stream_client, args=(port, body, stop, out))
               for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    done = [(sent, arrivals) for sent, arrivals in out if sent >= began + WARM_SECONDS]
    span = max(a[-1] for _, a in done) - min(sent for sent, _ in done)
    ttft = sorted(1000 * (a[0] - sent) for sent, a in done)
    itl = [1000 * (later - earlier) for _, a in done
           for earlier, later in itertools.pairwise(a)]
    return {
        "requests": len(done),
        "tokens_per_s": sum(len(a) for _, a in done) / span,
        "latency_ms": statistics.mean(1000 * (a[-1] - sent) for sent, a in done),
        "ttft_p50_ms": ttft[len(ttft) // 2],
        "ttft_p90_ms": ttft[int(len(ttft) * 0.9)],
        "itl_ms": statistics.mean(itl) if itl else float("nan"),
    }


def prompts(bench: BenchmarkInput) -> list[tuple[str, bytes]]:
    return [(Path(p.path or "").stem, (EXAMPLE.parent / (p.path or "")).read_bytes())
            for p in bench.payloads]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency level")
    parser.add_argument("--quick", action="store_true", help="local.1cpu, short prompt, 3 s")
    args = parser.parse_args()
    bench = BenchmarkInput.model_validate_json(EXAMPLE.read_text())
    assert isinstance(bench.model, GenerativeModel)
    profiles = ["local.1cpu"] if args.quick else [s.instance_type for s in bench.specs]
    bodies = prompts(bench)[:1] if args.quick else prompts(bench)
    seconds = 3.0 if args.quick else args.seconds
    rows = []
    for profile in profiles:
        spec = InstanceTypeSpec(instance_type=profile)
        with LocalEndpoint(bench.model, spec, model_root=EXAMPLE.parent) as endpoint:
            port = int(endpoint.deploy().rsplit(":", 1)[1])
            for name, body in bodies:
                for clients in CONCURRENCY:
                    r = measure(port, body, clients, seconds)
                    rows.append([profile, name, clients, r["requests"], f"{r['tokens_per_s']:.0f}",
                                 f"{r['latency_ms']:.0f}", f"{r['ttft_p50_ms']:.0f}",
                                 f"{r['ttft_p90_ms']:.0f}", f"{r['itl_ms']:.1f}"])
                    print(" | ".join(str(c) for c in rows[-1]), flush=True)
    body = table(["profile", "prompt", "clients", "requests", "output tokens/s", "latency ms",
                  "TTFT p50 ms", "TTFT p90 ms", "ITL ms"], rows)
    body += (
        f"\n\nModel and prompts: `{EXAMPLE.relative_to(ROOT)}` ("
        + ", ".join(f"{k}={v}" for k, v in bench.model.model_dump().items() if k != "kind")
        + f"). {seconds:g} s per level, closed loop, streamed; requests sent in the first "
        f"{WARM_SECONDS:g} s left out.\n"
    )
    print(body)
    if not args.quick:
        write_section("generative", "The local generative endpoint (continuous batching)", body)


if __name__ == "__main__":
    main()
