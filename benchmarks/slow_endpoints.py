"""Capacity accuracy on slow endpoints: requests of 0.5-5 s, capacities of about 0.2-2 rps.

Synthetic endpoints of known capacity (slots / service time) with short queues, sequential
(1 slot) and batched (4-8 slots), fixed and variable ("uniform": service_ms x [0.75, 1.25])
service times, each on a fresh server, with the default LoadSettings and objective. With
requests this slow the engine takes the slow-endpoint path (closed-loop probe, then open-loop
steps as long as their requests need; ``slow_search``'s docstring).

    .venv/bin/python benchmarks/slow_endpoints.py [--keep DIR] [--only 0 2] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table, write_section
from capacity_accuracy import ACCURACY_TARGET, Case, measure, sustainable_rate

from rightsizer.schema import LoadSettings, SyntheticModel

LOAD_SECONDS_TARGET = 180.0  # issue 12; the accuracy target is the same as for fast ones


def case(slots: int, ms: float, dist: str, queue: int) -> Case:
    model = SyntheticModel(slots=slots, service_ms=ms, service_distribution=dist, queue=queue)
    return Case(f"{slots} x {ms / 1000:g} s {dist}, queue {queue}", model, legacy=False)


def cases() -> list[Case]:
    return [
        case(1, 1000, "fixed", 2),  # the 1 rps endpoint
        case(1, 500, "fixed", 2),  # 2 rps
        case(1, 5000, "fixed", 2),  # 0.2 rps
        case(4, 2000, "fixed", 4),  # batched, 2 rps
        case(8, 4000, "fixed", 8),  # batched, 2 rps, 4 s requests
        case(1, 1000, "uniform", 8),  # variable service, 1 rps
        case(4, 2000, "uniform", 8),  # variable, batched, 2 rps
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="folder for the summaries (default: a temp folder)")
    parser.add_argument("--only", type=int, nargs="*",
                        help="measure only these rows (by index), read the others from --keep")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the table from the summaries already in --keep")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="slow-endpoints-"))
    rows, misses = [], []
    for index, c in enumerate(cases()):
        out = root / f"{index}-search"
        if not args.report_only and (args.only is None or index in args.only):
            measure(c, LoadSettings(), out)
        if not (out / "summary.json").exists():
            continue
        s = json.loads((out / "summary.json").read_text())
        wall = float((out / "wall_seconds.txt").read_text())
        found, sustainable = s["max_sustainable_rps"], sustainable_rate(c)
        err, serr = (found - c.capacity) / c.capacity, (found - sustainable) / sustainable
        ok = abs(err) <= ACCURACY_TARGET and s["load_seconds"] <= LOAD_SECONDS_TARGET
        print(f"[{c.label}] {found:.3f} rps ({err:+.1%}), {s['load_seconds']} s of load, "
              f"{wall:.0f} s wall", flush=True)
        if not ok:
            misses.append(f"{c.label}: {err:+.1%}, {s['load_seconds']} s of load; steps: "
                          + ", ".join(f"{st['target_rps']:g} {'pass' if st['passed'] else 'fail'}"
                                      for st in s["steps"]) + "; " + "; ".join(s["notes"]))
        rows.append([
            s["started_at"][11:16], c.label, f"{c.capacity:.3f}", f"{sustainable:.3f}",
            f"{found:.3f}", f"{err:+.1%}", f"{serr:+.1%}", f"{s['load_seconds']:.0f}",
            f"{wall:.0f}", len(s["steps"]), "yes" if ok else "**no**",
        ])
    headers = ["run at (UTC)", "endpoint", "true rps (k/S)", "sustainable at 1% (sim)",
               "found rps", "error vs k/S", "error vs sim", "load s", "wall s", "open-loop steps",
               "target met"]
    body = table(headers, rows) + (
        f"\n\nTargets (issue 12): within {ACCURACY_TARGET:.0%} of k/S with at most "
        f"{LOAD_SECONDS_TARGET:.0f} s of load (`summary.load_seconds`: the closed-loop probe and "
        "the open-loop steps, not the sequential warm-up). \"wall s\": the whole measurement, "
        "server start and warm-up included. Default `LoadSettings()` and objective (1% "
        "failures, no latency bound); each row a fresh synthetic server on one core.\n"
    )
    if misses:
        body += "\nTargets missed:\n\n" + "\n".join(f"- {m}" for m in misses) + "\n"
    print(body)
    if args.only is None or args.report_only:
        write_section("slow", "Capacity accuracy on slow endpoints (0.5-5 s requests)", body)


if __name__ == "__main__":
    main()
