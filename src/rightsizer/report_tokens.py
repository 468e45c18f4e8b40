"""The report's text-generation parts: per type tokens/s, TTFT, ITL and cost per million
output tokens; per step the same figures. Empty strings when no response carried tokens, so a
classic model's report is unchanged."""

from __future__ import annotations

from collections.abc import Sequence

from rightsizer.recommend import Recommendation, TokenFigures, TypeOption
from rightsizer.report_format import esc, money, ms, num
from rightsizer.schema import Objective
from rightsizer.summary import StepResult

COUNTING = (
    "Output tokens are the container's own count where it reports one (TGI/LMI details, one "
    "streamed event per token), else approximated as 4 characters of text per token. TTFT: "
    "time from sending a request to its first streamed token. ITL: (latency - TTFT) / (output "
    "tokens - 1) per request. Tokens/s per request: output tokens / whole latency. All at each "
    "type's highest passing step; cost per million output tokens at max traffic."
)


def generation_section(rec: Recommendation, objective: Objective) -> str:
    """The "Text generation" table, one row per type with token figures."""
    rows = [o for o in rec.options if o.tokens is not None]
    if not rows:
        return ""
    head = (
        "<tr><th class=l>Type</th><th>Output tokens/s<br>per instance</th>"
        "<th>Tokens per<br>request</th><th>TTFT p50 / p90 / p99<br>ms</th>"
        "<th>ITL p50 / p99<br>ms</th><th>Tokens/s per<br>request p50</th>"
        "<th>$ per M<br>output tokens</th><th class=l>Counted</th></tr>"
    )
    body = "".join(_row(o, o.tokens) for o in rows if o.tokens is not None)
    return (
        "<h2>Text generation</h2>"
        f'<div class="scroll"><table>{head}{body}</table></div>'
        f'<p class="small">{esc(COUNTING)}{_bounds_words(objective)}</p>'
    )


def _row(option: TypeOption, tokens: TokenFigures) -> str:
    ttft = " / ".join(ms(v) for v in (tokens.ttft_p50_ms, tokens.ttft_p90_ms, tokens.ttft_p99_ms))
    itl = " / ".join(ms(v) for v in (tokens.itl_p50_ms, tokens.itl_p99_ms))
    return (
        f"<tr><td class=l><strong>{esc(option.instance_type)}</strong></td>"
        f"<td>{num(tokens.output_tokens_per_second)}</td><td>{num(tokens.tokens_per_request)}</td>"
        f"<td class=n>{ttft}</td><td class=n>{itl}</td>"
        f"<td>{num(tokens.request_tokens_per_second_p50)}</td>"
        f"<td class=n>{money(option.cost_per_million_output_tokens)}</td>"
        f"<td class=l>{esc(tokens.counted)}</td></tr>"
    )


def _bounds_words(objective: Objective) -> str:
    words = []
    if objective.max_ttft_ms is not None and objective.ttft_percentile is not None:
        words.append(f"p{objective.ttft_percentile:g} TTFT &le; {objective.max_ttft_ms:g} ms")
    if objective.min_tokens_per_second is not None:
        words.append(
            f"p{objective.tokens_per_second_percentile:g} of per-request tokens/s &ge; "
            f"{objective.min_tokens_per_second:g}"
        )
    return f" Objective: {', '.join(words)}." if words else ""


def recommendation_words(best: TypeOption) -> str:
    """A sentence for the recommendation box, or '' for a classic model."""
    tokens = best.tokens
    if tokens is None:
        return ""
    ttft = f", p90 time to first token {ms(tokens.ttft_p90_ms)} ms" if tokens.ttft_p90_ms else ""
    return (
        f"<p>One instance serves {num(tokens.output_tokens_per_second)} output tokens/s{ttft}; "
        f"{money(best.cost_per_million_output_tokens)} per million output tokens at peak.</p>"
    )


def steps_tokens_table(steps: Sequence[StepResult]) -> str:
    """Per step token figures, or '' when no step had any."""
    if not any(s.tokens is not None for s in steps):
        return ""
    head = (
        "<tr><th>#</th><th>Target<br>rps</th><th>Output<br>tokens/s</th>"
        "<th>TTFT p50 / p90 / p99<br>ms</th><th>ITL p50 / p90 / p99<br>ms</th>"
        "<th>Tokens/s per<br>request p10 / p50</th><th>Objective TTFT ms<br>/ tokens/s</th></tr>"
    )
    rows = []
    for i, s in enumerate(steps, start=1):
        t = s.tokens
        if t is None:
            continue
        ttft = " / ".join(ms(v) for v in (t.ttft_p50_ms, t.ttft_p90_ms, t.ttft_p99_ms))
        itl = " / ".join(ms(v) for v in (t.itl_p50_ms, t.itl_p90_ms, t.itl_p99_ms))
        per_request = " / ".join(
            num(v) for v in (t.request_tokens_per_second_p10, t.request_tokens_per_second_p50)
        )
        bounds = f"{ms(t.ttft_objective_ms)} / {num(t.tokens_per_second_objective)}"
        rows.append(
            f"<tr><td>{i}</td><td>{num(s.target_rps)}</td>"
            f"<td>{num(t.output_tokens_per_second)}</td><td class=n>{ttft}</td>"
            f"<td class=n>{itl}</td><td class=n>{per_request}</td><td class=n>{bounds}</td></tr>"
        )
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'
