"""``report.html``: one self-contained page (inline CSS, inline SVG, no scripts, opens offline).

Plots are drawn here as plain SVG so that the report needs no plotting library and no network.
Every piece of text that comes from a run (type names, failure reasons, notes) is escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rightsizer import __version__
from rightsizer.history import RunDiff, RunRecord, TypeChange, TypeFigures
from rightsizer.pricing import BundledPrices
from rightsizer.recommend import HOURS_PER_MONTH, Recommendation, TypeOption
from rightsizer.report_format import esc, money, ms, num, pct
from rightsizer.report_tokens import generation_section, recommendation_words, steps_tokens_table
from rightsizer.schema import BenchmarkInput
from rightsizer.summary import StepResult, TypeSummary

ACCENT = "#1f4e79"
PASS = "#2e7d32"
FAIL = "#b3261e"
MUTED = "#6b7280"
GRID = "#e5e7eb"
PERCENTILES = (
    ("p50", "#1f4e79", "circle"), ("p95", "#c77c02", "square"), ("p99", "#b3261e", "diamond")
)

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1f2937;margin:0;background:#f8fafc}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 10px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h3{font-size:16px;margin:26px 0 6px}
.meta{color:#6b7280;margin:0 0 18px}.box{border:1px solid #c7d2fe;background:#f5f7ff;
 border-radius:6px;padding:14px 18px}.box.none{border-color:#fecaca;background:#fef2f2}
.big{font-size:19px;margin:0 0 8px}.warn{color:#92400e;background:#fffbeb;border:1px solid #fde68a;
 border-radius:4px;padding:6px 10px;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 7px;text-align:right;vertical-align:top}
th{background:#f3f4f6;font-weight:600;white-space:nowrap}
td.l,th.l{text-align:left}.scroll{overflow-x:auto}td.n{white-space:nowrap}
td.why{font-size:12.5px;color:#4b5563;padding-top:0}tr.top td{border-bottom:0}
tr.rec td{background:#eef2ff}.ok{color:#2e7d32;font-weight:600}.bad{color:#b3261e;font-weight:600}
pre{background:#0f172a;color:#e2e8f0;padding:12px 14px;border-radius:6px;overflow-x:auto;
 font-size:12.5px}code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
svg{max-width:100%;height:auto;font-family:inherit}figure{margin:0}
figcaption{color:#6b7280;font-size:13px}.small{font-size:13px;color:#6b7280}
footer{margin-top:40px;color:#6b7280;font-size:12px}
"""


# --- SVG primitives -----------------------------------------------------------------------------


def nice_range(lo: float, hi: float, count: int = 5) -> tuple[float, float, float]:
    """Axis bounds and tick step with round numbers (1, 2, 2.5, 5 x 10^n) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if (hi - lo) / (m * magnitude) <= count)
    return math.floor(lo / step) * step, math.ceil(hi / step - 1e-9) * step, step


def tick_label(value: float) -> str:
    return f"{round(value, 10):,g}"


@dataclass
class Frame:
    """A plot area inside an SVG: maps data to pixels and draws axes."""

    width: int
    height: int
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    x_step: float
    y_step: float
    left: int = 64
    right: int = 18
    top: int = 16
    bottom: int = 46

    @classmethod
    def fit(cls, width: int, height: int, xs: Sequence[float], ys: Sequence[float],
            zero: bool = True, **margins: int) -> Frame:
        x_lo, x_hi, x_step = nice_range(min([0.0] * zero + list(xs)), max(xs, default=1.0))
        y_lo, y_hi, y_step = nice_range(min([0.0] * zero + list(ys)), max(ys, default=1.0))
        return cls(width, height, x_lo, x_hi, y_lo, y_hi, x_step, y_step, **margins)

    def x(self, value: float) -> float:
        span = self.width - self.left - self.right
        return self.left + (value - self.x_lo) / (self.x_hi - self.x_lo) * span

    def y(self, value: float) -> float:
        span = self.height - self.top - self.bottom
        return self.height - self.bottom - (value - self.y_lo) / (self.y_hi - self.y_lo) * span

    def axes(self, x_label: str, y_label: str) -> str:
        parts = []
        for value in _steps(self.x_lo, self.x_hi, self.x_step):
            x = self.x(value)
            parts.append(_line(x, self.top, x, self.height - self.bottom, GRID))
            parts.append(_text(x, self.height - self.bottom + 16, tick_label(value), "middle"))
        for value in _steps(self.y_lo, self.y_hi, self.y_step):
            y = self.y(value)
            parts.append(_line(self.left, y, self.width - self.right, y, GRID))
            parts.append(_text(self.left - 6, y + 4, tick_label(value), "end"))
        bottom = self.height - self.bottom
        parts.append(_line(self.left, bottom, self.width - self.right, bottom, MUTED))
        parts.append(_line(self.left, self.top, self.left, bottom, MUTED))
        mid_x = (self.left + self.width - self.right) / 2
        parts.append(_text(mid_x, self.height - 8, x_label, "middle", size=12, fill="#374151"))
        mid_y = (self.top + bottom) / 2
        parts.append(
            f'<text x="14" y="{mid_y:.1f}" font-size="12" fill="#374151" text-anchor="middle" '
            f'transform="rotate(-90 14 {mid_y:.1f})">{esc(y_label)}</text>'
        )
        return "".join(parts)


def _steps(lo: float, hi: float, step: float) -> list[float]:
    count = round((hi - lo) / step)
    return [lo + i * step for i in range(count + 1)]


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, dash: str = "",
          width: float = 1.0) -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width}"{extra}/>')


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11,
          fill: str = MUTED) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" '
            f'text-anchor="{anchor}">{esc(text)}</text>')


def _marker(shape: str, x: float, y: float, color: str, hollow: bool = False, r: float = 4.5,
            title: str = "") -> str:
    fill = "#fff" if hollow else color
    tip = f"<title>{esc(title)}</title>" if title else ""
    style = f'fill="{fill}" stroke="{color}" stroke-width="1.6"'
    if shape == "square":
        size = f'width="{2 * r:.1f}" height="{2 * r:.1f}"'
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" {size} {style}>{tip}</rect>'
    if shape == "diamond":
        d = r + 1
        pts = f"{x:.1f},{y - d:.1f} {x + d:.1f},{y:.1f} {x:.1f},{y + d:.1f} {x - d:.1f},{y:.1f}"
        return f'<polygon points="{pts}" {style}>{tip}</polygon>'
    if shape == "cross":
        d = r * 0.9
        return (f'<g stroke="{color}" stroke-width="2.2">{tip}'
                + _line(x - d, y - d, x + d, y + d, color, width=2.2)
                + _line(x - d, y + d, x + d, y - d, color, width=2.2) + "</g>")
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {style}>{tip}</circle>'


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(label)}">{body}</svg>')


# --- plots --------------------------------------------------------------------------------------


def capacity_price_plot(options: Sequence[TypeOption], recommended: str | None) -> str:
    """Max sustainable rate per instance against price per instance-hour, one point per type."""
    points = [o for o in options if o.price_per_hour and o.capacity_per_instance > 0]
    if not points:
        return '<p class="small">No type has both a price and a measured capacity to plot.</p>'
    width, height = 540, 340
    frame = Frame.fit(width, height, [o.price_per_hour or 0 for o in points],
                      [o.capacity_per_instance for o in points], right=24, top=20)
    body = [frame.axes("price per instance-hour (USD)", "max sustainable rps per instance")]
    placed: list[tuple[float, float, float, float]] = []
    for o in sorted(points, key=lambda p: -p.capacity_per_instance):
        x, y = frame.x(o.price_per_hour or 0), frame.y(o.capacity_per_instance)
        color = ACCENT if o.instance_type == recommended else "#374151"
        prefix = "≥ " if o.capacity_is_lower_bound else ""
        tip = f"{o.instance_type}: {prefix}{o.capacity_per_instance:.4g} rps, ${o.price_per_hour}/h"
        hollow = o.capacity_is_lower_bound
        body.append(_marker("circle", x, y, color, hollow=hollow, r=5, title=tip))
        label = prefix + o.instance_type
        anchor = "end" if x > width * 0.6 else "start"
        body.append(_text(*_label_spot(x, y, label, anchor, placed), label, anchor, fill=color))
    return _svg(width, height, "".join(body), "max sustainable rate versus price")


def _label_spot(
    x: float, y: float, label: str, anchor: str, placed: list[tuple[float, float, float, float]]
) -> tuple[float, float]:
    """A label position next to (x, y) that overlaps no label placed before (greedy)."""
    text_width = 6.3 * len(label)
    dx = -8 if anchor == "end" else 8
    left = x + dx - text_width if anchor == "end" else x + dx
    for dy in (-8, 16, -22, 30, -36, 44, -50, 58):
        box = (left, y + dy - 11, left + text_width, y + dy + 2)
        if not any(_overlap(box, other) for other in placed):
            break
    placed.append(box)
    return x + dx, y + dy


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def latency_plot(options: Sequence[TypeOption], objective_ms: float | None,
                 objective_label: str) -> str:
    """p50/p95/p99 per type at its highest passing step, objective as a dashed line."""
    rows = [o for o in options if any(v is not None for v in (o.p50_ms, o.p95_ms, o.p99_ms))]
    if not rows:
        return '<p class="small">No latency measurements to plot.</p>'
    values = [v for o in rows for v in (o.p50_ms, o.p95_ms, o.p99_ms) if v is not None]
    if objective_ms is not None:
        values.append(objective_ms)
    row_h, left = 28, 150
    height = 16 + row_h * len(rows) + 70
    frame = Frame.fit(540, height, values, [0, len(rows)], left=left, top=16, bottom=70)
    frame.y_lo, frame.y_hi = 0, len(rows)
    body = [_x_axis_only(frame, "latency at the highest passing step (ms)")]
    for i, o in enumerate(rows):
        y = frame.y(len(rows) - i - 0.5)
        body.append(_text(left - 8, y + 4, o.instance_type, "end", fill="#374151"))
        known = [v for v in (o.p50_ms, o.p99_ms) if v is not None]
        if len(known) == 2:
            body.append(_line(frame.x(known[0]), y, frame.x(known[1]), y, "#cbd5e1", width=2))
        for (name, color, shape), value in zip(PERCENTILES, (o.p50_ms, o.p95_ms, o.p99_ms),
                                               strict=True):
            if value is not None:
                tip = f"{o.instance_type} {name} {value:.1f} ms"
                body.append(_marker(shape, frame.x(value), y, color, title=tip))
    if objective_ms is not None:
        x = frame.x(objective_ms)
        body.append(_line(x, frame.top, x, frame.height - frame.bottom, FAIL, dash="5 4"))
        anchor, dx = ("end", -4) if x > frame.width * 0.6 else ("start", 4)
        body.append(_text(x + dx, frame.top + 10, objective_label, anchor, fill=FAIL))
    body.append(_legend(left, height - 18))
    return _svg(540, height, "".join(body), "latency percentiles per instance type")


def _x_axis_only(frame: Frame, label: str) -> str:
    parts = []
    bottom = frame.height - frame.bottom
    for value in _steps(frame.x_lo, frame.x_hi, frame.x_step):
        x = frame.x(value)
        parts.append(_line(x, frame.top, x, bottom, GRID))
        parts.append(_text(x, bottom + 16, tick_label(value), "middle"))
    parts.append(_line(frame.left, bottom, frame.width - frame.right, bottom, MUTED))
    mid = (frame.left + frame.width - frame.right) / 2
    parts.append(_text(mid, bottom + 34, label, "middle", size=12, fill="#374151"))
    return "".join(parts)


def _legend(x: float, y: float) -> str:
    parts = []
    for name, color, shape in PERCENTILES:
        parts.append(_marker(shape, x + 5, y - 4, color))
        parts.append(_text(x + 14, y, name, fill="#374151"))
        x += 60
    return "".join(parts)


def steps_plot(summary: TypeSummary) -> str:
    """Offered (target) against achieved rate per step; failing steps marked with a cross."""
    steps = summary.steps
    if not steps:
        return '<p class="small">No load steps were run.</p>'
    width, height = 520, 320
    top = max(max(s.target_rps for s in steps), max(s.achieved_rps for s in steps))
    frame = Frame.fit(width, height, [top * 1.05], [top * 1.05], right=28)
    frame.y_lo, frame.y_hi, frame.y_step = frame.x_lo, frame.x_hi, frame.x_step  # same scale
    body = [frame.axes("target (offered) rate, rps", "achieved rate, rps")]
    body.append(_line(frame.x(frame.x_lo), frame.y(frame.x_lo), frame.x(frame.x_hi),
                      frame.y(frame.x_hi), "#94a3b8", dash="4 4"))
    corner_x, corner_y = frame.x(frame.x_hi) - 4, frame.y(frame.x_hi) + 14
    body.append(_text(corner_x, corner_y, "achieved = target", "end"))
    if summary.max_sustainable_rps > 0:
        y = frame.y(summary.max_sustainable_rps)
        body.append(_line(frame.left, y, width - frame.right, y, ACCENT, dash="2 3"))
        label = f"max sustainable {summary.max_sustainable_rps:.4g} rps"
        body.append(_text(width - frame.right - 4, y + 14, label, "end", fill=ACCENT))
    for index, s in enumerate(steps, start=1):
        x, y = frame.x(s.target_rps), frame.y(s.achieved_rps)
        tip = _step_tip(index, s)
        body.append(_marker("circle" if s.passed else "cross", x, y, PASS if s.passed else FAIL,
                            title=tip))
        body.append(_text(x + 7, y + 13, str(index), size=10))
    legend_x, legend_y = frame.left + 12, frame.top + 14
    body.append(_marker("circle", legend_x, legend_y - 4, PASS))
    body.append(_text(legend_x + 9, legend_y, "passed", fill="#374151"))
    body.append(_marker("cross", legend_x + 64, legend_y - 4, FAIL))
    body.append(_text(legend_x + 73, legend_y, "failed", fill="#374151"))
    return _svg(width, height, "".join(body), f"steps of {summary.instance_type}")


def _step_tip(index: int, s: StepResult) -> str:
    verdict = "passed" if s.passed else "failed: " + "; ".join(s.reasons)
    return f"step {index}: target {s.target_rps:.4g}, achieved {s.achieved_rps:.4g} rps, {verdict}"


# --- sections -----------------------------------------------------------------------------------


def _recommendation_section(rec: Recommendation, bi: BenchmarkInput) -> str:
    best = rec.recommended
    if best is None or best.autoscaling is None:
        return (f'<div class="box none"><p class="big"><strong>No recommendation.</strong></p>'
                f"{_paragraphs(rec.explanation)}</div>")
    policy = best.autoscaling
    words = (
        f'<p class="big">Use <strong>{esc(best.instance_type)}</strong>: '
        f"<strong>{best.instances_at_min}</strong> instance(s) at {bi.traffic.min_rps:g} rps, "
        f"scaling to <strong>{best.instances_at_max}</strong> at {bi.traffic.max_rps:g} rps.</p>"
        f"<p>About <strong>{money(best.monthly_cost_at_min, 2)}</strong> per month at minimum "
        f"traffic ({money(best.cost_per_hour_at_min)}/h, {HOURS_PER_MONTH:g} h), "
        f"{money(best.cost_per_hour_at_max)}/h at peak, {money(best.cost_per_million_inferences)} "
        f"per million inferences at peak. One instance sustains "
        f"{num(best.capacity_per_instance)} rps{_latency_words(best, bi)}.</p>"
        f"{recommendation_words(best)}"
    )
    if best.capacity_is_lower_bound:
        words += (f'<p class="warn">The capacity of {esc(best.instance_type)} is a lower bound '
                  f"(bottleneck: {esc(best.bottleneck)}): it may need fewer instances.</p>")
    policy_words = (
        f"<h3>Autoscaling</h3><p>Target tracking on <code>{esc(policy.metric)}</code> at "
        f"<strong>{policy.target_value:g}</strong> invocations per minute per instance "
        f"({num(best.capacity_per_instance)} rps &times; safety factor {policy.safety_factor:g} "
        f"&times; 60). MinCapacity {policy.min_capacity}, MaxCapacity {policy.max_capacity}; "
        f"scale-in cooldown {policy.scale_in_cooldown_seconds} s, scale-out "
        f"{policy.scale_out_cooldown_seconds} s. To keep the target utilisation even at peak, "
        f"raise MaxCapacity to {policy.max_capacity_at_target}. Deploy the endpoint with at least "
        f"{policy.min_capacity} instance(s), replace <code>&lt;endpoint-name&gt;</code>, then run "
        f"the two commands below.</p>"
        f"<p class=\"small\"><code>aws application-autoscaling register-scalable-target "
        f"--cli-input-json file://scalable-target.json</code></p>"
        f"<pre><code>{esc(json.dumps(policy.register_scalable_target(), indent=2))}</code></pre>"
        f"<p class=\"small\"><code>aws application-autoscaling put-scaling-policy "
        f"--cli-input-json file://scaling-policy.json</code></p>"
        f"<pre><code>{esc(json.dumps(policy.put_scaling_policy(), indent=2))}</code></pre>"
    )
    return f'<div class="box">{words}</div>{policy_words}'


def _latency_words(option: TypeOption, bi: BenchmarkInput) -> str:
    objective = bi.objective
    if objective.max_latency_ms is None:
        return " (no latency objective was set)"
    verdict = "meets" if option.meets_latency_objective else "does not meet"
    return (f" and {verdict} the objective p{objective.latency_percentile:g} &le; "
            f"{objective.max_latency_ms:g} ms at that rate")


def _options_table(rec: Recommendation) -> str:
    head = (
        "<tr><th>#</th><th class=l>Type</th><th class=l>Status</th><th>rps per<br>instance</th>"
        "<th>Tested<br>with</th><th>Instances<br>min / max</th><th>$/h<br>min / max</th>"
        "<th>$/month<br>at min</th><th>$ per M<br>inferences</th><th>p50 / p95 / p99<br>ms</th>"
        "<th class=l>Bottleneck</th></tr>"
    )
    rows = [_option_row(o, rec.recommended) for o in rec.options]
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _option_row(o: TypeOption, best: TypeOption | None) -> str:
    is_best = best is not None and o.instance_type == best.instance_type
    status = ('<span class="ok">viable</span>' if o.status == "viable"
              else '<span class="bad">not viable</span>')
    capacity = ("≥ " if o.capacity_is_lower_bound else "") + num(o.capacity_per_instance)
    counts = "–" if o.instances_at_min is None else f"{o.instances_at_min} / {o.instances_at_max}"
    latency = " / ".join(_short_ms(v) for v in (o.p50_ms, o.p95_ms, o.p99_ms))
    cost = ("–" if o.cost_per_hour_at_min is None
            else f"{money(o.cost_per_hour_at_min)} / {money(o.cost_per_hour_at_max)}")
    text = "<br>".join(esc(t) for t in [*o.reasons, *o.notes])
    cells = [
        f"<td>{o.rank or ''}</td>", f"<td class=l><strong>{esc(o.instance_type)}</strong></td>",
        f"<td class=l>{status}</td>", f"<td class=n>{capacity}</td>",
        f"<td>{o.instance_count_tested}</td>", f"<td class=n>{counts}</td>",
        f"<td class=n>{cost}</td>", f"<td class=n>{money(o.monthly_cost_at_min, 2)}</td>",
        f"<td class=n>{money(o.cost_per_million_inferences)}</td>",
        f"<td class=n>{latency}</td>", f"<td class=l>{esc(o.bottleneck or '–')}</td>",
    ]
    css = "rec" if is_best else ""
    row = f'<tr class="{css}{" top" if text else ""}">{"".join(cells)}</tr>'
    if text:  # reasons and notes get a full-width line of their own under the numbers
        row += f'<tr class="{css} sub"><td></td><td class="l why" colspan="10">{text}</td></tr>'
    return row


def _short_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _steps_table(steps: Sequence[StepResult]) -> str:
    head = ("<tr><th>#</th><th>Target<br>rps</th><th>Offered<br>rps</th><th>Achieved<br>rps</th>"
            "<th>Requests</th><th>Failures</th><th>Failure<br>rate</th><th>p50<br>ms</th>"
            "<th>p95<br>ms</th><th>p99<br>ms</th><th>Objective<br>latency ms</th><th>Passed</th>"
            "<th class=l>Reasons</th></tr>")
    rows = []
    for i, s in enumerate(steps, start=1):
        verdict = '<span class="ok">yes</span>' if s.passed else '<span class="bad">no</span>'
        rows.append(
            f"<tr><td>{i}</td><td>{num(s.target_rps)}</td><td>{num(s.offered_rps)}</td>"
            f"<td>{num(s.achieved_rps)}</td><td>{s.requests:,}</td><td>{s.failures:,}</td>"
            f"<td>{pct(s.failure_rate)}</td><td>{ms(s.p50_ms)}</td><td>{ms(s.p95_ms)}</td>"
            f"<td>{ms(s.p99_ms)}</td><td>{ms(s.latency_objective_ms)}</td><td>{verdict}</td>"
            f"<td class=l>{'<br>'.join(esc(r) for r in s.reasons)}</td></tr>"
        )
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _type_section(summary: TypeSummary) -> str:
    status = ('<span class="ok">succeeded</span>' if summary.status == "succeeded"
              else '<span class="bad">failed</span>')
    facts = [
        f"{status}",
        f"{summary.instance_count} instance(s) tested",
        f"method {esc(summary.method)}",
        f"max sustainable {num(summary.max_sustainable_rps)} rps",
        f"bottleneck {esc(summary.bottleneck or '–')}",
        f"load time {summary.load_seconds:,.0f} s",
    ]
    parts = [f'<h3 id="type-{esc(summary.instance_type)}">{esc(summary.instance_type)}</h3>',
             f'<p class="small">{" · ".join(facts)}</p>']
    if summary.status == "failed":
        stage = f" at {esc(summary.failed_stage)}" if summary.failed_stage else ""
        reason = esc(summary.reason or "no reason given")
        parts.append(f'<p class="warn">Failed{stage}: {reason}</p>')
    if summary.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in summary.notes) + "</ul>")
    if summary.steps:
        parts.append(f"<figure>{steps_plot(summary)}<figcaption>Each point is a load step "
                     "(number = order run). Points below the dashed diagonal did not keep up with "
                     "the offered rate.</figcaption></figure>")
        parts.append(_steps_table(summary.steps))
        parts.append(steps_tokens_table(summary.steps))
    return "".join(parts)


def _inputs_section(bi: BenchmarkInput, run_id: str) -> str:
    objective = bi.objective
    latency = (f", p{objective.latency_percentile:g} &le; {objective.max_latency_ms:g} ms"
               if objective.max_latency_ms is not None else ", no latency objective")
    return (
        f'<p class="meta">Run <code>{esc(run_id)}</code> · model {esc(bi.model.kind)} · region '
        f"{esc(bi.region)} · traffic {bi.traffic.min_rps:g}–{bi.traffic.max_rps:g} rps · "
        f"objective: failures &le; {objective.max_failure_rate:.2%}{latency} · safety factor "
        f"{bi.safety_factor:g} · {len(bi.specs)} instance type(s)</p>"
    )


def _prices_section(rec: Recommendation, bi: BenchmarkInput) -> str:
    table = BundledPrices()
    lines = []
    for o in rec.options:
        if o.instance_type in bi.prices:
            origin = "from the input's \"prices\""
        elif o.price_per_hour is None:
            origin = "no price"
        else:
            bundled = table.price_per_hour(o.instance_type, bi.region)
            kind = "estimate" if table.is_estimate(o.instance_type, bi.region) else "quoted"
            origin = (f"bundled table ({kind})" if bundled == o.price_per_hour
                      else "another source (e.g. the Pricing API)")
        lines.append(f"<li>{esc(o.instance_type)}: {money(o.price_per_hour)}/h, {esc(origin)}</li>")
    return (
        "<h2>Prices</h2><ul class=small>" + "".join(lines) + "</ul>"
        f'<p class="small">On-demand USD per instance-hour in {esc(bi.region)}. Bundled table as '
        f"of {esc(table.as_of)}: {esc(table.source)}. Figures marked estimate were derived, not "
        f"quoted (see the table's notes); give exact figures in the input's \"prices\".</p>"
    )


def _since_last_run_section(diff: RunDiff, trend: Sequence[RunRecord]) -> str:
    if diff.regressed:
        verdict = (f'<div class="warn"><strong>Regression</strong> (threshold '
                   f"{diff.threshold:.0%}):<ul>"
                   + "".join(f"<li>{esc(r)}</li>" for r in diff.regressions) + "</ul></div>")
    else:
        verdict = f'<p class="ok">No regression (threshold {diff.threshold:.0%}).</p>'
    head = ("<tr><th class=l>Type</th><th>rps per instance<br>before / now</th><th>Change</th>"
            "<th>p99 ms<br>before / now</th><th>$/h per instance<br>before / now</th></tr>")
    rows = "".join(_change_row(c) for c in diff.types)
    notes = "".join(f'<p class="small">{esc(n)}</p>' for n in diff.notes)
    return (
        "<h2>Since last run</h2>"
        f'<p class="meta">Compared with <code>{esc(diff.old.run_id)}</code> '
        f"(started {esc(diff.old.started_at)}): recommended {_fleet_words(diff.old)} then, "
        f"{_fleet_words(diff.new)} now.</p>{verdict}"
        f'<div class="scroll"><table>{head}{rows}</table></div>{notes}{_trend_table(trend)}'
    )


def _fleet_words(record: RunRecord) -> str:
    if record.recommended_type is None:
        return "nothing viable"
    return (f"{record.instances_at_max} &times; {esc(record.recommended_type)} at "
            f"{money(record.cost_per_hour_at_max)}/h at max traffic")


def _change_row(c: TypeChange) -> str:
    change = "–" if c.capacity_change is None else f"{c.capacity_change:+.0%}"
    css = "bad" if c.capacity_fell else ""
    return (
        f"<tr><td class=l>{esc(c.instance_type)}</td>"
        f"<td class=n>{_capacity_of(c.old)} / {_capacity_of(c.new)}</td>"
        f'<td class="n {css}">{change}</td>'
        f"<td class=n>{_p99_of(c.old)} / {_p99_of(c.new)}</td>"
        f"<td class=n>{_price_of(c.old)} / {_price_of(c.new)}</td></tr>"
    )


def _capacity_of(f: TypeFigures | None) -> str:
    return "–" if f is None else num(f.capacity_per_instance) + ("" if f.viable else " ✗")


def _p99_of(f: TypeFigures | None) -> str:
    return "–" if f is None else _short_ms(f.p99_ms)


def _price_of(f: TypeFigures | None) -> str:
    return "–" if f is None else money(f.price_per_hour)


def _trend_table(trend: Sequence[RunRecord]) -> str:
    """Capacity per instance and the recommended fleet's cost, run by run (oldest first)."""
    types = sorted({t.instance_type for r in trend for t in r.types})
    head = ("<tr><th class=l>Run started</th><th class=l>Recommended</th><th>$/h at max</th>"
            + "".join(f"<th>{esc(t)}<br>rps/instance</th>" for t in types) + "</tr>")
    rows = []
    for r in trend:
        cells = "".join(f"<td class=n>{_capacity_of(r.figures(t))}</td>" for t in types)
        rows.append(f"<tr><td class=l>{esc(r.started_at)}</td>"
                    f"<td class=l>{esc(r.recommended_type or 'nothing viable')}</td>"
                    f"<td class=n>{money(r.cost_per_hour_at_max)}</td>{cells}</tr>")
    return (f"<h3>Trend over the last {len(trend)} runs</h3>"
            f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>')


# --- page ---------------------------------------------------------------------------------------


def render_report(
    recommendation: Recommendation,
    summaries: Sequence[TypeSummary],
    benchmark_input: BenchmarkInput,
    run_id: str,
    *,
    since_last_run: RunDiff | None = None,
    trend: Sequence[RunRecord] = (),
) -> str:
    """The whole ``report.html`` as one string; "Since last run" only when there was one."""
    bi = benchmark_input
    best = recommendation.recommended
    objective = bi.objective
    objective_label = ""
    if objective.max_latency_ms is not None:
        percentile = f"p{objective.latency_percentile:g}"
        objective_label = f"{percentile} objective {objective.max_latency_ms:g} ms"
    sections = [
        f"<h1>Right-sizing report: {esc(bi.name)}</h1>",
        _inputs_section(bi, run_id),
        "<h2>Recommendation</h2>",
        _recommendation_section(recommendation, bi),
        "<h2>Why</h2>",
        _paragraphs(recommendation.explanation),
        _since_last_run_section(since_last_run, trend) if since_last_run else "",
        "<h2>All instance types</h2>",
        _options_table(recommendation),
        '<p class="small">Instances min / max: the fleet the autoscaling policy runs at min and '
        "max traffic; costs are for that fleet. &ge; marks a capacity that is a lower bound "
        "(the load generator or the rate cap, not the endpoint, stopped the measurement).</p>",
        '<div class="grid2"><figure>',
        capacity_price_plot(recommendation.options, best.instance_type if best else None),
        "<figcaption>Max sustainable rate per instance against price. Up and to the left is "
        "better; hollow points are lower bounds.</figcaption></figure><figure>",
        latency_plot(recommendation.options, objective.max_latency_ms, objective_label),
        "<figcaption>Latency percentiles at each type's highest passing step.</figcaption>"
        "</figure></div>",
        generation_section(recommendation, objective),
        "<h2>Load steps per type</h2>",
        *(_type_section(s) for s in _ordered(summaries, recommendation)),
        _prices_section(recommendation, bi),
        f"<footer>Generated by rightsizer {esc(__version__)}. This page is self-contained: "
        "no scripts, fonts or external files.</footer>",
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>rightsizer: {esc(run_id)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


def _paragraphs(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"


def _ordered(summaries: Iterable[TypeSummary], rec: Recommendation) -> list[TypeSummary]:
    """Types in the order of the recommendation's table."""
    order = {o.instance_type: i for i, o in enumerate(rec.options)}
    last = len(order)
    return sorted(summaries, key=lambda s: (order.get(s.instance_type, last), s.instance_type))
