"""The capacity search, pure: no network, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsizer.search import Probe, SearchSettings, best_rate, bracket, next_rate

SETTINGS = SearchSettings(start_rps=10, growth_factor=2, max_rps=10_000, precision=0.03)


def simulate(capacity: float, search: SearchSettings = SETTINGS, limit: int = 60) -> list[Probe]:
    """An ideal endpoint: passes up to its capacity; overloaded, it completes `capacity`."""
    history: list[Probe] = []
    while len(history) < limit:
        decision = next_rate(history, search)
        if decision.next_rps is None:
            return history
        rate = decision.next_rps
        history.append(Probe(rate, rate <= capacity, min(rate, capacity)))
    raise AssertionError(f"no convergence: {history}")


def test_first_probe_is_the_start_rate() -> None:
    assert next_rate([], SETTINGS).next_rps == 10


def test_grows_geometrically_while_passing() -> None:
    history = [Probe(10, True, 10), Probe(20, True, 20)]
    assert next_rate(history, SETTINGS).next_rps == 40


def test_stops_at_the_upper_bound_as_rate_limited() -> None:
    search = SearchSettings(start_rps=10, growth_factor=2, max_rps=30, precision=0.03)
    history = simulate(1000, search)
    assert best_rate(history) == 30
    assert next_rate(history, search).rate_limited


def test_bracket_ignores_failures_below_the_best_pass() -> None:
    history = [Probe(10, False, 9), Probe(20, True, 20), Probe(40, False, 25)]
    low, high = bracket(history)
    assert low is not None and high is not None
    assert (low.rate, high.rate) == (20, 40)


def test_uses_the_overloaded_throughput_as_an_estimate() -> None:
    history = [Probe(100, True, 100), Probe(200, False, 150)]
    assert next_rate(history, SETTINGS).next_rps == pytest.approx(150 * 0.985)


def test_bisects_when_the_failure_was_not_throughput() -> None:
    # A latency failure: the endpoint kept up, so its throughput says nothing about capacity.
    history = [Probe(100, True, 100), Probe(200, False, 200)]
    assert next_rate(history, SETTINGS).next_rps == pytest.approx((100 * 200) ** 0.5)


def test_stops_when_the_bracket_is_within_precision() -> None:
    history = [Probe(100, True, 100), Probe(102, False, 100)]
    decision = next_rate(history, SETTINGS)
    assert decision.next_rps is None and "precision" in decision.stop_reason


def test_goes_down_when_even_the_start_rate_fails() -> None:
    history = simulate(3)
    assert 3 / 1.03 <= best_rate(history) <= 3


def test_reports_zero_when_nothing_ever_passes() -> None:
    assert best_rate(simulate(0.0)) == 0.0


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.floats(min_value=0.5, max_value=9_000),
    start=st.floats(min_value=0.5, max_value=500),
    growth=st.floats(min_value=1.2, max_value=4),
    precision=st.floats(min_value=0.01, max_value=0.2),
)
def test_converges_within_precision_below_the_true_capacity(
    capacity: float, start: float, growth: float, precision: float
) -> None:
    search = SearchSettings(
        start_rps=start, growth_factor=growth, max_rps=10_000, precision=precision
    )
    found = best_rate(simulate(capacity, search))
    assert capacity / (1 + precision) <= found <= capacity
