"""Load-generator throughput: the highest rate one load-generator process sustains.

Against an endpoint that does no work (nginx ``return 200`` on 127.0.0.1, or a minimal uvicorn
app when nginx is missing): fixed-rate open-loop steps through ``LoadGenerator.step`` (5 s each,
rates growing x1.15) judged by the engine's own ``judge_step``; the ceiling is the highest rate
that passed (every request left on time and was answered). (a) plain HTTP, (b) SigV4-signed
SageMaker runtime requests (``SageMakerTarget`` with fake credentials, ``endpoint_url`` =
the stand-in). For comparison in the same run: ``wrk -t1 -c64 -d10s`` (POST via a lua script)
and boto3 ``invoke_endpoint`` in a loop on one thread. Then two processes. Finally
``find_max_rate`` with one process and a max_rps far above its ceiling, to show that
``summary.json`` blames the load generator.

CPU placement (2 cores): the server is pinned to core 1 and the load generator (and wrk, and
the boto3 loop) to core 0, so one generator process has a core of its own; with two generator
processes they take both cores and share core 1 with the server.

    .venv/bin/python benchmarks/loadgen_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table, write_section

# Fake credentials for SigV4 (inherited by the spawned load-generator processes).
os.environ.update(
    AWS_ACCESS_KEY_ID="AKIDEXAMPLEBENCH0000",
    AWS_SECRET_ACCESS_KEY="benchmark/secret/key/not/real/000000000000",
    AWS_SESSION_TOKEN="benchmark-session-token",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE="/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    AWS_EC2_METADATA_DISABLED="true",
)

from rightsizer.analysis import judge_step
from rightsizer.engine import find_max_rate
from rightsizer.loadgen.processes import LoadGenerator
from rightsizer.loadgen.target import HttpTarget, SageMakerTarget
from rightsizer.payloads import LoadedPayload
from rightsizer.schema import LoadSettings, Objective

BODY = b'{"x": 1}'
PAYLOAD = [LoadedPayload(BODY, "application/json", None, 1.0)]
STEP_SECONDS, WARMUP_SECONDS, GROWTH = 5.0, 1.0, 1.15
SIGNED_TARGET = 5000.0
NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log crit;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  keepalive_requests 100000000; keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ default_type application/json; return 200 '{{"predictions":[{{"class":0}}]}}'; }}
  }}
}}
"""
WRK_LUA = (
    'wrk.method = "POST"\nwrk.body = \'{"x": 1}\'\n'
    'wrk.headers["Content-Type"] = "application/json"\n'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server on port {port}")


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx:
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port))
        cmd = ["taskset", "-c", "1", nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
               "-g", "daemon off;"]
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
        name = f"nginx {version.strip().split('/')[-1]} (1 worker, `return 200`)"
    else:
        script = str(Path(__file__).with_name("nowork_server.py"))
        cmd = ["taskset", "-c", "1", sys.executable, script, str(port)]
        name = "uvicorn raw ASGI app (benchmarks/nowork_server.py)"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port, name


def ladder(target, processes: int, start: float, limit: float) -> dict:
    """Fixed-rate steps growing x GROWTH until one fails; the last passing one is the ceiling."""
    best = None
    steps = []
    with LoadGenerator(target, PAYLOAD, processes=processes, request_timeout=10) as gen:
        gen.step(min(start, 500), 2, 2)  # connections and caches
        rate = start
        while rate <= limit:
            s = gen.step(rate, STEP_SECONDS, 2.0)
            v = judge_step(
                s.requests, s.unanswered, target_rps=rate, window_start=s.start + WARMUP_SECONDS,
                window_end=s.end, sent_total=s.sent, step_seconds=STEP_SECONDS,
                worker_cpu=s.worker_cpu, objective=Objective(),
            )
            r = v.result
            cpu_per_k = sum(s.worker_cpu) * STEP_SECONDS / max(s.sent, 1) * 1000
            row = {"rate": rate, "passed": r.passed, "achieved": r.achieved_rps,
                   "cpu": s.worker_cpu, "cpu_s_per_1000": cpu_per_k, "reasons": r.reasons}
            steps.append(row)
            print(f"  {processes} proc {type(target).__name__} {rate:.0f} rps: "
                  f"{'ok' if r.passed else 'FAIL'} achieved {r.achieved_rps:.0f}, cpu "
                  f"{[round(c, 2) for c in s.worker_cpu]}, {cpu_per_k:.3f} cpu-s/1000 "
                  f"{'; '.join(r.reasons)[:160]}", flush=True)
            if not r.passed:
                break
            best = row
            rate = round(rate * GROWTH, -1)
        rss = gen.close()["peak_rss_kb"]
    return {"best": best, "steps": steps, "peak_rss_mb": rss / 1024}


def run_wrk(port: int, tmp: Path, path: str) -> tuple[float | None, str]:
    if not shutil.which("wrk"):
        return None, "wrk not installed"
    (tmp / "post.lua").write_text(WRK_LUA)
    out = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", "-c64", "-d10s", "-s", str(tmp / "post.lua"),
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=False,
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:[^\n]*", out)
    note = f"non-2xx: {bad.group(1) if bad else 0}" + (f"; {errors.group(0)}" if errors else "")
    return (float(match.group(1)) if match else None), note


def run_boto3(port: int, seconds: float) -> tuple[float, float]:
    import boto3

    client = boto3.client("sagemaker-runtime", region_name="us-east-1",
                          endpoint_url=f"http://127.0.0.1:{port}")
    for _ in range(20):
        client.invoke_endpoint(EndpointName="bench", Body=BODY, ContentType="application/json")
    n, cpu0, t0 = 0, time.process_time(), time.time()
    while time.time() - t0 < seconds:
        client.invoke_endpoint(EndpointName="bench", Body=BODY, ContentType="application/json")
        n += 1
    wall, cpu = time.time() - t0, time.process_time() - cpu0
    return n / wall, cpu / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short ladders, no find_max_rate")
    parser.add_argument("--one-process", action="store_true",
                        help="only the one-process ladders, printed (to compare two trees)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # the generator (spawned children inherit) on core 0
    tmp = Path(tempfile.mkdtemp(prefix="loadgen-bench-"))
    server, port, server_name = start_server(tmp)
    url = f"http://127.0.0.1:{port}"
    plain = HttpTarget(url)
    signed = SageMakerTarget(endpoint_name="bench", region="us-east-1", endpoint_url=url)
    limit = 3000 if args.quick else 40000
    results: dict[str, dict] = {}
    try:
        results["plain-1"] = ladder(plain, 1, 2000, limit)
        results["signed-1"] = ladder(signed, 1, 2000, limit)
        if args.one_process:
            for key, result in results.items():
                best = result["best"] or {}
                print(f"{key}: {best.get('rate')} req/s sustained, "
                      f"{best.get('cpu_s_per_1000', float('nan')):.3f} CPU s/1000, peak RSS "
                      f"{result['peak_rss_mb']:.0f} MB")
            return
        wrk, wrk_note = run_wrk(port, tmp, "/endpoints/bench/invocations")
        print(f"  wrk: {wrk} ({wrk_note})", flush=True)
        boto_rps, boto_cpu = run_boto3(port, 3 if args.quick else 10)
        print(f"  boto3: {boto_rps:.0f} req/s, {boto_cpu:.3f} cpu-s/1000", flush=True)
        os.sched_setaffinity(0, {0, 1})  # two processes: both cores (shared with the server)
        results["signed-2"] = ladder(signed, 2, 4000, limit * 2)
        results["plain-2"] = ladder(plain, 2, 4000, limit * 2)
        os.sched_setaffinity(0, {0})
        demo = None
        if not args.quick:
            out = tmp / "find_max_rate"
            summary = find_max_rate(signed, PAYLOAD, Objective(),
                                    LoadSettings(max_rps=100000.0), out)
            demo = json.loads(summary.model_dump_json())
            print(f"  find_max_rate: {demo['max_sustainable_rps']} rps, bottleneck "
                  f"{demo['bottleneck']}", flush=True)
    finally:
        server.terminate()
        server.wait(10)

    def fmt(key: str, label: str) -> list[object]:
        r = results[key]
        b = r["best"]
        fail = r["steps"][-1] if r["steps"] and not r["steps"][-1]["passed"] else None
        return [
            label,
            f"{b['rate']:.0f}" if b else "none",
            f"{fail['rate']:.0f}" if fail else "not reached",
            " / ".join(f"{c:.0%}" for c in b["cpu"]) if b else "",
            f"{b['cpu_s_per_1000']:.3f}" if b else "",
            f"{r['peak_rss_mb']:.0f}",
        ]

    rows = [
        fmt("plain-1", "1 process, plain HTTP"),
        fmt("signed-1", "1 process, SigV4 SageMakerTarget"),
        fmt("signed-2", "2 processes, SigV4 SageMakerTarget"),
        fmt("plain-2", "2 processes, plain HTTP"),
    ]
    body = f"Endpoint: {server_name} on 127.0.0.1, pinned to core 1.\n\n"
    body += table(
        ["load generator", "highest rate sustained (req/s)", "first rate failed",
         "generator CPU at that rate (per process)", "CPU s / 1,000 req",
         "peak RSS per process (MB)"],
        rows,
    )
    body += "\n\nFor comparison, same endpoint, same run (pinned to core 0):\n\n"
    body += table(
        ["client", "req/s", "CPU s / 1,000 req, notes"],
        [["`wrk -t1 -c64 -d10s` (POST, lua script), closed loop",
          f"{wrk:.0f}" if wrk else "n/a", wrk_note],
         ["boto3 `invoke_endpoint` loop, 1 thread", f"{boto_rps:.0f}", f"{boto_cpu:.3f}"]],
    )
    signed_best = results["signed-1"]["best"]["rate"] if results["signed-1"]["best"] else 0.0
    body += (
        f"\n\nTarget: >= {SIGNED_TARGET:,.0f} signed req/s from one process: "
        f"{'met' if signed_best >= SIGNED_TARGET else 'missed'} ({signed_best:,.0f} req/s).\n\n"
        f"Method: open-loop fixed-rate steps of {STEP_SECONDS:g} s through `LoadGenerator.step` "
        f"(rates x{GROWTH} from 2,000, or 4,000 with two processes), each judged by the engine's "
        f"`judge_step` ({WARMUP_SECONDS:g} s warm-up discarded): a rate is sustained when every "
        "request left on schedule (<5% late by more than 50 ms + one interval, >= 99% sent) and "
        "the answers kept up. CPU is the worker's process time while sending, divided by the "
        "requests sent. Peak RSS is `ru_maxrss` of the worker. With one generator process the "
        "server has core 1 to itself; with two processes the generators spread over both cores "
        "and share one with the server, so the two-process ceiling on this 2-core box is bounded "
        "by the machine, not by the generator design.\n"
    )
    if demo:
        last = demo["steps"][-1] if demo["steps"] else {}
        body += (
            "\nGenerator-limit detection: `find_max_rate` with one process, SigV4 target, "
            f"`max_rps=100000`: reported {demo['max_sustainable_rps']:,.0f} req/s, "
            f"`\"bottleneck\": \"{demo['bottleneck']}\"` after {len(demo['steps'])} steps; last "
            f"step {last.get('target_rps', 0):,.0f} req/s: "
            f"{'; '.join(last.get('reasons', []))[:300]}. "
            f"Note: {' '.join(n for n in demo['notes'] if 'load generator' in n)}\n"
        )
    body += (
        f"\nLoad average (1 min) at the end of the run: {os.getloadavg()[0]:.2f}. Check with "
        "`ps` that no other heavy process (e.g. a test suite) ran meanwhile: on 2 cores it "
        "lowers every ceiling above.\n"
    )
    print(body)
    if not args.quick:  # a smoke check does not replace the recorded figures
        write_section("loadgen", "Load-generator throughput", body)


if __name__ == "__main__":
    main()
