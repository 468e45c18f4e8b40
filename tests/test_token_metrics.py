"""A step's token figures and the objective's token bounds, from hand-built samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rightsizer.analysis import judge_step
from rightsizer.loadgen.processes import SAMPLE_COLUMNS
from rightsizer.schema import Objective
from rightsizer.token_metrics import token_stats

START, SECONDS, WARMUP = 1_000.0, 20.0, 2.0


def generations(
    rate: float = 2.0,
    ttft_ms: float = 200.0,
    itl_ms: float = 20.0,
    tokens: int = 51,
    streamed: bool = True,
    reported: bool = True,
) -> pd.DataFrame:
    """Requests at ``rate`` whose ``tokens`` arrive ``ttft_ms`` then every ``itl_ms``."""
    scheduled = START + np.arange(int(rate * SECONDS)) / rate
    latency = ttft_ms + itl_ms * (tokens - 1)
    frame = pd.DataFrame(
        {
            "scheduled": scheduled,
            "started": scheduled,
            "latency_ms": latency,
            "ok": True,
            "status": 200,
            "error": None,
            "ttft_ms": ttft_ms if streamed else np.nan,
            "output_tokens": float(tokens),
            "tokens_reported": reported,
        }
    )
    return frame[SAMPLE_COLUMNS]


def judge(frame: pd.DataFrame, objective: Objective, rate: float = 2.0):
    return judge_step(
        frame,
        np.array([]),
        target_rps=rate,
        window_start=START + WARMUP,
        window_end=START + SECONDS,
        sent_total=len(frame),
        step_seconds=SECONDS,
        worker_cpu=[0.1],
        objective=objective,
    ).result


def test_streamed_generations_give_ttft_itl_and_token_throughput() -> None:
    step = judge(generations(), Objective())
    tokens = step.tokens
    assert tokens is not None and tokens.streamed and tokens.counted == "reported"
    assert tokens.ttft_p50_ms == tokens.ttft_p99_ms == pytest.approx(200.0)
    assert tokens.itl_p50_ms == pytest.approx(20.0)
    assert tokens.tokens_per_request_p50 == 51
    # 51 tokens in 1.2 s per request; 2 requests/s complete -> 102 tokens/s.
    assert tokens.request_tokens_per_second_p50 == pytest.approx(51 / 1.2, rel=1e-3)
    assert tokens.output_tokens_per_second == pytest.approx(102, rel=0.05)
    assert step.passed


def test_whole_responses_have_tokens_but_no_ttft() -> None:
    tokens = judge(generations(streamed=False, reported=False), Objective()).tokens
    assert tokens is not None and not tokens.streamed and tokens.counted == "approximate"
    assert tokens.ttft_p50_ms is None and tokens.itl_p50_ms is None
    assert tokens.output_tokens_per_second > 0


def test_classic_model_responses_have_no_token_figures() -> None:
    frame = generations()
    frame["output_tokens"] = np.nan
    frame["ttft_ms"] = np.nan
    step = judge(frame, Objective())
    assert step.tokens is None and step.passed


def test_a_ttft_bound_fails_the_step_and_says_which_bound_broke() -> None:
    objective = Objective(ttft_percentile=90, max_ttft_ms=150)
    step = judge(generations(ttft_ms=200), objective)
    assert not step.passed
    assert step.tokens is not None and step.tokens.ttft_objective_ms == pytest.approx(200)
    assert any("p90 time to first token 200 ms is above 150 ms" in r for r in step.reasons)
    assert judge(generations(ttft_ms=100), objective).passed


def test_a_tokens_per_second_bound_holds_the_slow_tail_to_it() -> None:
    objective = Objective(min_tokens_per_second=40)
    slow = generations(itl_ms=30)  # 51 tokens in 1.7 s: 30 tokens/s
    step = judge(slow, objective)
    assert not step.passed
    assert any("p10 of per-request tokens/s is 30.0, below 40" in r for r in step.reasons)
    assert judge(generations(itl_ms=10), objective).passed  # 51 in 0.7 s: 73 tokens/s


def test_a_token_bound_without_any_generated_text_fails_rather_than_passes() -> None:
    frame = generations()
    frame["output_tokens"] = np.nan
    stats, reasons = token_stats(frame, frame, SECONDS, Objective(min_tokens_per_second=1))
    assert stats is None
    assert reasons == [
        "the objective bounds tokens but no successful response carried generated text"
    ]


def test_mixed_counting_is_said() -> None:
    frame = generations()
    frame.loc[frame.index[::2], "tokens_reported"] = False
    tokens = judge(frame, Objective()).tokens
    assert tokens is not None and tokens.counted == "mixed"


def test_loadtest_refuses_a_ttft_bound_on_whole_responses(tmp_path, capsys) -> None:
    from rightsizer.cli import EXIT_INVALID, main

    payload = tmp_path / "prompt.json"
    payload.write_text('{"inputs": "hi"}')
    code = main(["loadtest", "--url", "http://127.0.0.1:9", "--payload", str(payload),
                 "--content-type", "application/json", "--ttft-percentile", "90",
                 "--max-ttft-ms", "500", "--out", str(tmp_path / "out")])
    assert code == EXIT_INVALID
    assert "--max-ttft-ms needs --stream" in capsys.readouterr().err
