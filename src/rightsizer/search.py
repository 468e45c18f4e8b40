"""Where to probe next: the search for the highest sustainable rate (pure, no I/O).

1. Grow the rate geometrically from the start rate until a step fails.
2. Narrow the bracket [highest passing, lowest failing above it] until
   failing / passing <= 1 + precision. A failing step that was throughput-bound tells us
   roughly where the capacity is (what the endpoint achieved while overloaded), so the next
   probes go just below and just above that estimate; otherwise, or when the estimate is
   useless, bisect geometrically.
The answer is the highest passing rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The estimate is used only when the overloaded endpoint fell short of the offer (a
# throughput failure, not a latency or error-rate one).
ESTIMATE_SHORTFALL = 0.99


@dataclass(frozen=True)
class Probe:
    rate: float
    passed: bool
    achieved_rps: float


@dataclass(frozen=True)
class SearchSettings:
    start_rps: float
    growth_factor: float
    max_rps: float
    precision: float
    min_rps: float = 0.05


@dataclass(frozen=True)
class Decision:
    next_rps: float | None
    stop_reason: str = ""
    rate_limited: bool = False


def bracket(history: list[Probe]) -> tuple[Probe | None, Probe | None]:
    """(highest passing probe, lowest failing probe above it)."""
    passing = [p for p in history if p.passed]
    low = max(passing, key=lambda p: p.rate, default=None)
    floor = low.rate if low else 0.0
    failing = [p for p in history if not p.passed and p.rate > floor]
    high = min(failing, key=lambda p: p.rate, default=None)
    return low, high


def best_rate(history: list[Probe]) -> float:
    low, _ = bracket(history)
    return low.rate if low else 0.0


def next_rate(history: list[Probe], settings: SearchSettings) -> Decision:
    if not history:
        return Decision(min(settings.start_rps, settings.max_rps))
    low, high = bracket(history)
    if high is None:
        assert low is not None
        if low.rate >= settings.max_rps * (1 - 1e-9):
            return Decision(None, f"passed at the upper bound max_rps={settings.max_rps:g}", True)
        return Decision(min(low.rate * settings.growth_factor, settings.max_rps))
    if low is None:
        if high.rate <= settings.min_rps:
            return Decision(None, f"failed even at {high.rate:.3g} rps")
        lower = high.rate / settings.growth_factor
        estimate = _estimate(high)
        if estimate is not None and estimate > settings.min_rps:
            lower = max(lower, estimate * (1 - settings.precision / 2))
        return Decision(max(lower, settings.min_rps))
    if high.rate / low.rate <= 1 + settings.precision:
        return Decision(None, f"bracket {low.rate:.4g}-{high.rate:.4g} rps within precision")
    return Decision(_split(low.rate, high, settings.precision))


def _estimate(failing: Probe) -> float | None:
    if 0 < failing.achieved_rps < ESTIMATE_SHORTFALL * failing.rate:
        return failing.achieved_rps
    return None


def _split(low: float, high: Probe, precision: float) -> float:
    """The next rate strictly inside (low, high.rate)."""
    margin = 1 + precision / 4
    lowest, highest = low * margin, high.rate / margin
    estimate = _estimate(high)
    if estimate is not None:
        below, above = estimate * (1 - precision / 2), estimate * (1 + precision / 2)
        for candidate in (below, above):
            if lowest <= candidate <= highest:
                return candidate
        if above < lowest:
            # The capacity looks no higher than what already passed: one probe just above
            # closes the bracket if it fails.
            return min(highest, low * (1 + precision))
    return math.sqrt(low * high.rate)
