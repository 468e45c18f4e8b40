"""A step's generated-token figures and the token bounds of the objective (pure: pandas in).

Only responses that carry generated text have tokens (``output_tokens`` is NaN otherwise), and
only streamed ones a time to first token; a step of classic-model responses has no token
figures at all. Definitions (LLMPerf's, so figures compare with FMBench/LLMPerf reports):

- time to first token (TTFT): from sending the request to its first token;
- inter-token latency (ITL) of a request: (latency - TTFT) / (output tokens - 1), whatever
  the container's chunking (several tokens per event still give the per-token figure);
- tokens per second of a request: output tokens / whole latency;
- the step's output tokens per second: tokens of the successful requests *completed* in the
  window, per second of window (the throughput that costs are divided by).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from rightsizer.schema import Objective
from rightsizer.summary import TokenStats


def _percentile(values: pd.Series, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def token_stats(
    in_window: pd.DataFrame, completed: pd.DataFrame, width: float, objective: Objective
) -> tuple[TokenStats | None, list[str]]:
    """The step's token figures, and why it fails the objective's token bounds (if it does).

    ``in_window``: requests scheduled in the measurement window; ``completed``: requests that
    completed in it; ``width``: the window's seconds.
    """
    ok = in_window[in_window.ok & in_window.output_tokens.notna()]
    if ok.empty:
        return None, _unmeasurable(objective, in_window)
    tokens = ok.output_tokens.astype(float)
    latency_s = ok.latency_ms / 1000.0
    streamed = ok[ok.ttft_ms.notna()]
    ttft = streamed.ttft_ms
    decode = streamed[streamed.output_tokens > 1]
    itl = (decode.latency_ms - decode.ttft_ms) / (decode.output_tokens - 1)
    per_request = (tokens / latency_s.where(latency_s > 0)).dropna()
    done = completed[completed.ok & completed.output_tokens.notna()]
    stats = TokenStats(
        streamed=not streamed.empty,
        counted=_counted(ok.tokens_reported),
        output_tokens=int(tokens.sum()),
        output_tokens_per_second=round(float(done.output_tokens.sum()) / width, 3),
        tokens_per_request_p50=_percentile(tokens, 50),
        ttft_p50_ms=_percentile(ttft, 50),
        ttft_p90_ms=_percentile(ttft, 90),
        ttft_p99_ms=_percentile(ttft, 99),
        itl_p50_ms=_percentile(itl, 50),
        itl_p90_ms=_percentile(itl, 90),
        itl_p99_ms=_percentile(itl, 99),
        request_tokens_per_second_p10=_percentile(per_request, 10),
        request_tokens_per_second_p50=_percentile(per_request, 50),
    )
    return _judged(stats, ttft, per_request, objective)


def _counted(reported: pd.Series) -> Literal["reported", "approximate", "mixed"]:
    if reported.all():
        return "reported"
    return "approximate" if not reported.any() else "mixed"


def _judged(
    stats: TokenStats, ttft: pd.Series, per_request: pd.Series, objective: Objective
) -> tuple[TokenStats, list[str]]:
    reasons: list[str] = []
    if objective.ttft_percentile is not None and objective.max_ttft_ms is not None:
        measured = _percentile(ttft, objective.ttft_percentile)
        stats.ttft_objective_ms = measured
        if measured is None:
            reasons.append("no streamed response to measure time to first token on")
        elif measured > objective.max_ttft_ms:
            reasons.append(
                f"p{objective.ttft_percentile:g} time to first token {measured:.0f} ms is "
                f"above {objective.max_ttft_ms:g} ms"
            )
    if objective.min_tokens_per_second is not None:
        percentile = objective.tokens_per_second_percentile
        measured = _percentile(per_request, percentile)
        stats.tokens_per_second_objective = measured
        if measured is not None and measured < objective.min_tokens_per_second:
            reasons.append(
                f"p{percentile:g} of per-request tokens/s is {measured:.1f}, below "
                f"{objective.min_tokens_per_second:g}: fewer than {100 - percentile:g}% of "
                "requests reach it"
            )
    return stats, reasons


def _unmeasurable(objective: Objective, in_window: pd.DataFrame) -> list[str]:
    """A step that bounds tokens but has none to judge fails (only if it had any success)."""
    if not objective.bounds_tokens or not in_window.ok.any():
        return []
    return ["the objective bounds tokens but no successful response carried generated text"]
