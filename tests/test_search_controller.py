"""The search's decisions without any load: a simulated endpoint of known capacity turns each
planned step into a judged result, and a fake clock stands in for time.

Every test here runs with sockets, processes and ``time.sleep`` forbidden (``no_io``).
"""

from __future__ import annotations

import heapq
import math
import multiprocessing.process
import random
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from rightsizer.analysis import closed_loop_throughput
from rightsizer.engine import GeneratorRunner
from rightsizer.loadgen.messages import NO_TOKENS
from rightsizer.loadgen.processes import SAMPLE_COLUMNS, StepSamples
from rightsizer.schema import LoadSettings, Objective
from rightsizer.search import Probe, SearchSettings, next_rate
from rightsizer.search_controller import (
    MAX_COOL_DOWN_SECONDS,
    Bounds,
    EndSearch,
    MeasuredStep,
    SearchController,
    SearchReport,
    StepOutcome,
    StepPlan,
    StepSearchPolicy,
    auto_start_rps,
)
from rightsizer.serving.synthetic import SlotSchedule
from rightsizer.slow_search import (
    PROBE_MAX_SECONDS,
    PROBE_MIN_SUCCESSES,
    ProbeLevel,
    ProbePlan,
    SlowEndpointPolicy,
    choose_slow_search,
    next_probe,
    probe_budget,
    probe_estimate,
    probe_successes_needed,
)
from rightsizer.summary import StepResult, TypeSummary

STEP_SECONDS, WARMUP_SECONDS = 10.0, 2.0
# What a real step costs beyond its offered seconds (start delay, drain).
STEP_OVERHEAD_SECONDS = 2.3
WIDE_BOUNDS = Bounds(max_steps=25, max_seconds=900)


class Forbidden(AssertionError):
    pass


def _forbidden(*_args: object, **_kwargs: object) -> None:
    raise Forbidden("the search's decisions must not open sockets, start processes or sleep")


@pytest.fixture(autouse=True)
def no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "__init__", _forbidden)
    monkeypatch.setattr(socket, "create_connection", _forbidden)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _forbidden)
    monkeypatch.setattr(subprocess.Popen, "__init__", _forbidden)
    monkeypatch.setattr(time, "sleep", _forbidden)


def test_the_guard_really_forbids_sockets_processes_and_sleeping() -> None:
    with pytest.raises(Forbidden):
        socket.socket()
    with pytest.raises(Forbidden):
        multiprocessing.process.BaseProcess().start()
    with pytest.raises(Forbidden):
        time.sleep(0)


@dataclass
class FakeClock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class SimulatedEndpoint:
    """Passes every rate up to ``capacity``; overloaded, it completes ``capacity`` per second
    and leaves the excess unanswered. Above ``generator_ceiling`` the load generator falls
    behind its schedule instead. Each step takes its seconds plus overhead on ``clock``."""

    capacity: float
    clock: FakeClock
    generator_ceiling: float = math.inf
    plans: list[StepPlan] = field(default_factory=list)

    def run_step(self, plan: StepPlan) -> StepOutcome:
        self.plans.append(plan)
        self.clock.now += plan.seconds + STEP_OVERHEAD_SECONDS
        if plan.rate > self.generator_ceiling:
            reason = f"load generator could not offer {plan.rate:.1f} rps"
            return _outcome(plan, self.generator_ceiling, [reason], generator_limited=True)
        if plan.rate <= self.capacity:
            return _outcome(plan, plan.rate, [])
        backlog = round((plan.rate - self.capacity) * (plan.seconds - plan.warmup_seconds))
        reason = f"endpoint kept up with only {self.capacity:.1f} of {plan.rate:.1f} rps"
        return _outcome(plan, self.capacity, [reason], unanswered=backlog)

    @property
    def rates(self) -> list[float]:
        return [plan.rate for plan in self.plans]


def _outcome(
    plan: StepPlan,
    achieved: float,
    reasons: list[str],
    *,
    generator_limited: bool = False,
    unanswered: int = 0,
) -> StepOutcome:
    window = plan.seconds - plan.warmup_seconds
    result = StepResult(
        target_rps=round(plan.rate, 3),
        achieved_rps=round(achieved, 3),
        offered_rps=round(plan.rate, 3),
        requests=round(plan.rate * window),
        failures=0,
        failure_rate=0.0,
        p50_ms=20.0 + plan.rate / 100,
        p95_ms=30.0 + plan.rate / 100,
        p99_ms=40.0 + plan.rate / 100,
        passed=not reasons,
        reasons=reasons,
        duration_seconds=plan.seconds,
    )
    return StepOutcome(result, achieved, generator_limited, unanswered)


def policy(
    start_rps: float = 10, max_rps: float = 10_000, precision: float = 0.03
) -> StepSearchPolicy:
    settings = SearchSettings(
        start_rps=start_rps, growth_factor=2, max_rps=max_rps, precision=precision
    )
    return StepSearchPolicy(settings, STEP_SECONDS, WARMUP_SECONDS)


@dataclass
class Run:
    endpoint: SimulatedEndpoint
    clock: FakeClock
    report: SearchReport
    messages: list[str]

    @property
    def summary(self) -> TypeSummary:
        summary = TypeSummary(instance_type="local.1cpu", status="succeeded")
        self.report.apply_to(summary)
        return summary


def search(
    capacity: float,
    *,
    search_policy: StepSearchPolicy | None = None,
    bounds: Bounds = WIDE_BOUNDS,
    generator_ceiling: float = math.inf,
    should_stop: list[str | None] | None = None,
    health: list[str | None] | None = None,
) -> Run:
    """One search against a simulated endpoint; ``should_stop``/``health`` answer in turn."""
    clock = FakeClock()
    endpoint = SimulatedEndpoint(capacity, clock, generator_ceiling)
    messages: list[str] = []
    stop_answers, health_answers = iter(should_stop or []), iter(health or [])
    controller = SearchController(
        search_policy or policy(),
        endpoint,
        bounds,
        clock=clock,
        progress=messages.append,
        should_stop=lambda: next(stop_answers, None),
        target_health=lambda: next(health_answers, None),
    )
    return Run(endpoint, clock, controller.run(), messages)


def test_grows_geometrically_from_the_start_rate_while_steps_pass() -> None:
    run = search(1000, bounds=Bounds(max_steps=4, max_seconds=900))
    assert run.endpoint.rates == [10, 20, 40, 80]
    assert all(
        p.seconds == STEP_SECONDS and p.warmup_seconds == WARMUP_SECONDS for p in run.endpoint.plans
    )
    assert run.messages[0] == "step 1: offering 10.0 rps for 10 s"
    assert (
        run.messages[1].startswith("step 1: 10.0 rps -> achieved 10.0 rps")
        and "passed" in (run.messages[1])
    )


def test_brackets_the_capacity_and_narrows_it_to_the_precision() -> None:
    run = search(100)
    rates = run.endpoint.rates
    assert rates[:5] == [10, 20, 40, 80, 160]  # grows until 160 fails
    assert all(80 < rate < 160 for rate in rates[5:])  # then stays inside the bracket
    summary = run.summary
    assert 100 / 1.03 <= summary.max_sustainable_rps <= 100
    assert summary.status == "succeeded" and summary.bottleneck == "endpoint"
    assert any("within precision" in note for note in summary.notes)
    assert any(not step.passed for step in summary.steps)
    best = max((s for s in summary.steps if s.passed), key=lambda s: s.target_rps)
    assert best.target_rps == pytest.approx(summary.max_sustainable_rps, abs=1e-3)
    assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == (
        best.p50_ms,
        best.p95_ms,
        best.p99_ms,
    )


def test_probes_exactly_the_rates_the_pure_search_chooses() -> None:
    settings = SearchSettings(start_rps=7, growth_factor=2, max_rps=10_000, precision=0.03)
    capacity = 333.0
    expected: list[float] = []
    history: list[Probe] = []
    while (rate := next_rate(history, settings).next_rps) is not None:
        expected.append(rate)
        history.append(Probe(rate, rate <= capacity, min(rate, capacity)))
    run = search(capacity, search_policy=StepSearchPolicy(settings, STEP_SECONDS, WARMUP_SECONDS))
    assert run.endpoint.rates == expected
    assert run.report.max_sustainable_rps == max(p.rate for p in history if p.passed)


def test_max_steps_ends_the_search_before_it_converges() -> None:
    run = search(100, bounds=Bounds(max_steps=3, max_seconds=900))
    assert len(run.endpoint.plans) == 3
    summary = run.summary
    assert summary.max_sustainable_rps == 40 and summary.status == "succeeded"
    assert summary.notes[-1] == "search stopped at the step bound max_steps=3"


def test_max_seconds_starts_no_step_that_would_end_past_it() -> None:
    # Each step takes 12.3 s: after three (36.9 s) a fourth would end past 45 s.
    run = search(1000, bounds=Bounds(max_steps=25, max_seconds=45))
    assert len(run.endpoint.plans) == 3
    summary = run.summary
    assert summary.notes[-1] == "search stopped at the time bound max_seconds=45"
    assert summary.load_seconds == round(3 * (STEP_SECONDS + STEP_OVERHEAD_SECONDS), 1)
    assert summary.max_sustainable_rps == 40


def test_a_generator_that_cannot_keep_up_ends_the_search_and_is_blamed() -> None:
    run = search(1000, generator_ceiling=50)
    assert run.endpoint.rates == [10, 20, 40, 80]
    summary = run.summary
    assert summary.bottleneck == "load-generator" and summary.status == "succeeded"
    assert summary.max_sustainable_rps == 40  # a lower bound on the endpoint's capacity
    assert "load.processes" in summary.notes[-1] and "80.0 rps" in summary.notes[-1]


def test_passing_at_max_rps_is_reported_as_a_rate_limit() -> None:
    run = search(1000, search_policy=policy(max_rps=30))
    assert run.endpoint.rates == [10, 20, 30]
    summary = run.summary
    assert summary.bottleneck == "rate-limit" and summary.max_sustainable_rps == 30
    assert summary.notes == ["search stopped: passed at the upper bound max_rps=30"]


def test_an_endpoint_that_dies_ends_the_search_at_once_keeping_earlier_steps() -> None:
    # Healthy after step 1, gone after step 2 (which overloaded it).
    run = search(15, health=[None, "its server process (pid 42) was killed by SIGKILL"])
    assert run.endpoint.rates == [10, 20]  # nothing offered to a dead endpoint
    summary = run.summary
    assert summary.status == "failed" and summary.failed_stage == "load_test"
    assert summary.reason == (
        "the endpoint died during step 2 (20.0 rps): its server process (pid 42) was killed "
        "by SIGKILL"
    )
    assert [s.passed for s in summary.steps] == [True, False]
    assert summary.steps[1].reasons[-1] == "the endpoint died during this step"
    assert "the endpoint died during this step" in run.messages[-1]  # described after
    assert any("the endpoint died" in note for note in summary.notes)


def test_should_stop_before_the_first_step_runs_nothing() -> None:
    run = search(100, should_stop=["interrupted (SIGINT)"])
    assert run.endpoint.plans == []
    summary = run.summary
    assert summary.status == "failed" and summary.reason == "interrupted (SIGINT)"
    assert summary.steps == []


def test_should_stop_after_a_step_wins_over_the_endpoints_health() -> None:
    # Before step 1: go on; after it: interrupted (Ctrl-C also stops the endpoint: it is not
    # reported as having died).
    run = search(100, should_stop=[None, "interrupted (SIGTERM)"], health=["gone"])
    assert run.endpoint.rates == [10]
    summary = run.summary
    assert summary.reason == "interrupted (SIGTERM)" and summary.failed_stage == "load_test"
    assert len(summary.steps) == 1 and summary.steps[0].passed
    assert summary.max_sustainable_rps == 10


def test_an_interrupt_as_the_search_ends_still_fails_the_type() -> None:
    asked = [None] * 7  # before and after each of steps 1-3, before step 4
    run = search(
        1000, search_policy=policy(max_rps=40), should_stop=[*asked, "interrupted (SIGINT)"]
    )
    assert run.endpoint.rates == [10, 20, 40]
    assert run.summary.status == "failed" and run.summary.reason == "interrupted (SIGINT)"


def test_nothing_passing_fails_the_type_with_the_first_steps_reasons() -> None:
    run = search(0.0)
    summary = run.summary
    assert summary.status == "failed" and summary.max_sustainable_rps == 0
    assert summary.reason == (
        "no step met the objective, not even 10 rps: endpoint kept up with only 0.0 of 10.0 rps"
    )
    assert summary.p99_ms is None


def test_bounds_too_tight_for_one_step_say_so() -> None:
    run = search(100, bounds=Bounds(max_steps=25, max_seconds=STEP_SECONDS - 1))
    summary = run.summary
    assert run.endpoint.plans == [] and summary.status == "failed"
    assert summary.reason == "no step could be run within the bounds"


def test_an_overloaded_step_is_followed_by_a_bounded_cool_down() -> None:
    # 160 rps on 100: 60 x 8 s = 480 unanswered at 100 rps -> 4.8 s; 1000 on 10 -> capped.
    assert search(100, bounds=Bounds(max_steps=5, max_seconds=900)).clock.slept == [4.8]
    capped = search(10, search_policy=policy(start_rps=1000), bounds=Bounds(1, 900))
    assert capped.clock.slept == [MAX_COOL_DOWN_SECONDS]
    assert search(1000, bounds=Bounds(max_steps=5, max_seconds=900)).clock.slept == []


def test_the_start_rate_is_half_the_sequential_rate_unless_given() -> None:
    assert auto_start_rps(LoadSettings(), sequential_rps=49.0) == 24.5
    assert auto_start_rps(LoadSettings(), sequential_rps=0.5) == 1.0
    assert auto_start_rps(LoadSettings(max_rps=5), sequential_rps=49.0) == 5
    assert auto_start_rps(LoadSettings(start_rps=3), sequential_rps=49.0) == 3
    from_load = StepSearchPolicy.from_load(LoadSettings(step_seconds=6, warmup_seconds=1), 40.0)
    assert from_load.next_step([]) == StepPlan(20.0, 6, 1)


@dataclass
class Schedule:
    """Another policy, like a Locust ``LoadTestShape``: a fixed list of (rate, seconds)."""

    stages: Sequence[tuple[float, float]]

    def next_step(self, history: Sequence[MeasuredStep]) -> StepPlan | EndSearch:
        if len(history) == len(self.stages):
            return EndSearch("schedule done")
        rate, seconds = self.stages[len(history)]
        return StepPlan(rate, seconds, warmup_seconds=0)


def test_any_policy_drives_the_same_controller_and_its_step_lengths_count() -> None:
    clock = FakeClock()
    endpoint = SimulatedEndpoint(100, clock)
    stages = [(50.0, 20.0), (90.0, 5.0), (120.0, 30.0)]
    report = SearchController(Schedule(stages), endpoint, WIDE_BOUNDS, clock=clock).run()
    assert [(p.rate, p.seconds) for p in endpoint.plans] == stages
    assert report.max_sustainable_rps == 90 and report.notes == ["search stopped: schedule done"]
    # The time bound reads each plan's own length: 20 + 2.3 s spent, a 30 s step would pass 50.
    short = SimulatedEndpoint(100, clock := FakeClock())
    SearchController(Schedule([(50, 20), (60, 30)]), short, Bounds(25, 50), clock=clock).run()
    assert [p.rate for p in short.plans] == [50]


# --- Slow endpoints: a first-come-first-served queue simulated in virtual time -----------------
# The synthetic server's own slot accounting (SlotSchedule) serves each request; the engine's
# own runner judges the steps (GeneratorRunner + analysis.judge_step), so these searches see
# the backlog a real short step sees, not a verdict decided by the simulator.

REFUSED_PAUSE = 0.1  # as locust_driver's (not imported: Locust patches with gevent on import)


@dataclass
class QueueEndpoint:
    """``slots`` x ``service_s`` with ``queue`` waiting places: the load generator's view of
    it (``StepSampler`` for open-loop steps, ``closed_loop`` for the probe), on ``clock``.
    ``spread``: service times uniform on service_s x [1 - spread, 1 + spread]."""

    slots: int
    service_s: float
    queue: int
    clock: FakeClock
    spread: float = 0.0
    seed: int = 0
    load_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    @property
    def capacity(self) -> float:
        return self.slots / self.service_s

    def draw(self, _start: float) -> float:
        return self.service_s * self.random.uniform(1 - self.spread, 1 + self.spread)

    def step(self, rate: float, seconds: float, drain: float) -> StepSamples:
        start = self.clock.now
        schedule = SlotSchedule(self.slots)
        rows, unanswered = [], []
        sends = math.ceil(rate * seconds - 1e-9)  # as the driver's: every due time before the end
        for i in range(sends):
            due = start + i / rate
            finish = schedule.admit(due, self.queue, self.draw)
            if finish is None:
                rows.append((due, due, 1.0, False, 503, "HTTP 503: queue full", *NO_TOKENS))
            elif finish > start + seconds + drain:
                unanswered.append(due)
            else:
                rows.append((due, due, (finish - due) * 1000, True, 200, None, *NO_TOKENS))
        took = seconds + (drain if unanswered else 0.0) + STEP_OVERHEAD_SECONDS
        self.clock.now += took
        self.load_seconds += took
        return StepSamples(rate, start, start + seconds, pd.DataFrame(rows, columns=SAMPLE_COLUMNS),
                           np.array(unanswered), sends, [0.2])

    def closed_loop(self, plan: ProbePlan) -> ProbeLevel:
        """``plan.clients`` clients, each sending when answered (after a pause if refused)."""
        start = self.clock.now
        schedule = SlotSchedule(self.slots)
        sends = [(start, client) for client in range(plan.clients)]
        per_client: list[list[tuple[object, ...]]] = [[] for _ in range(plan.clients)]
        while not _probe_done(per_client, plan) and sends[0][0] - start < plan.max_seconds:
            now, client = heapq.heappop(sends)
            finish = schedule.admit(now, self.queue, self.draw)
            ok = finish is not None
            done = finish if finish is not None else now + 0.001
            per_client[client].append((now, now, (done - now) * 1000, ok, 200 if ok else 503,
                                       None, *NO_TOKENS))
            heapq.heappush(sends, (done if ok else done + REFUSED_PAUSE, client))
        frames = [pd.DataFrame(rows, columns=SAMPLE_COLUMNS) for rows in per_client]
        seconds = max(row[0] + row[2] / 1000 for rows in per_client for row in rows) - start
        self.clock.now += seconds
        self.load_seconds += seconds
        successes = sum(int(frame.ok.iloc[1:].sum()) for frame in frames)
        return ProbeLevel(plan.clients, closed_loop_throughput(frames), successes, seconds)


def _probe_done(per_client: list[list[tuple[object, ...]]], plan: ProbePlan) -> bool:
    if any(len(rows) < plan.min_each for rows in per_client):
        return False
    return sum(bool(row[3]) for rows in per_client for row in rows) >= plan.min_total


def probe(endpoint: QueueEndpoint, precision: float = 0.03) -> list[ProbeLevel]:
    """The engine's probe loop, on the simulated endpoint (whose cv it knows)."""
    levels = [ProbeLevel(1, 1 / endpoint.service_s, 0, 0.0)]
    needed = probe_successes_needed(endpoint.spread / math.sqrt(3), precision)
    spent = 0.0
    while (plan := next_probe(levels, spent, needed)) is not None:
        levels.append(endpoint.closed_loop(plan))
        spent += levels[-1].seconds
    return levels


def slow_search(endpoint: QueueEndpoint, load: LoadSettings | None = None) -> SearchReport:
    """Probe, then the slow-endpoint policy, as ``engine._search`` runs them."""
    load = load or LoadSettings()
    estimate = probe_estimate(probe(endpoint, load.precision))
    policy = SlowEndpointPolicy.from_estimate(load, estimate, endpoint.service_s)
    runner = GeneratorRunner(endpoint, Objective(), load.request_timeout_seconds,
                             load.precision / 2)
    return SearchController(policy, runner, Bounds.from_load(load), clock=endpoint.clock).run()


def fixed_step_search(endpoint: QueueEndpoint) -> SearchReport:
    load = LoadSettings()
    policy = StepSearchPolicy.from_load(load, sequential_rps=1 / endpoint.service_s)
    runner = GeneratorRunner(endpoint, Objective(), load.request_timeout_seconds)
    return SearchController(policy, runner, Bounds.from_load(load), clock=endpoint.clock).run()


def test_the_fixed_step_search_overstates_a_one_rps_endpoint_with_a_short_queue() -> None:
    # The case: 1 s requests, 2 waiting places. A 10 s step at +18% builds a backlog
    # of under 2 requests: no refusal, and within the keep-up slack.
    endpoint = QueueEndpoint(slots=1, service_s=1.0, queue=2, clock=FakeClock())
    found = fixed_step_search(endpoint).max_sustainable_rps
    assert found > 1.10 * endpoint.capacity


@pytest.mark.parametrize(
    ("slots", "service_s", "queue"),
    [(1, 1.0, 2), (1, 0.5, 2), (1, 5.0, 2), (4, 2.0, 4), (8, 4.0, 8), (3, 1.5, 0)],
)
def test_the_slow_search_finds_a_fixed_service_endpoint_within_3_percent(
    slots: int, service_s: float, queue: int
) -> None:
    endpoint = QueueEndpoint(slots, service_s, queue, FakeClock())
    report = slow_search(endpoint)
    assert report.max_sustainable_rps == pytest.approx(endpoint.capacity, rel=0.03)
    assert report.max_sustainable_rps <= endpoint.capacity * (1 + 1e-9)
    assert endpoint.load_seconds <= 180


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("slots", "service_s"), [(1, 0.5), (4, 2.0)])
def test_the_slow_search_finds_a_variable_service_endpoint_within_3_percent(
    slots: int, service_s: float, seed: int
) -> None:
    # 2 rps, service times uniform on S x [0.75, 1.25] (cv 14%), 8 waiting places: k/S is
    # sustainable. The probe's ~160 answers give a standard error of about 1.1%. (At 1 rps the
    # 180 s allow half as many: 1.6%, and 3% is no longer a safe bound.)
    endpoint = QueueEndpoint(slots, service_s, 8, FakeClock(), spread=0.25, seed=seed)
    report = slow_search(endpoint)
    assert report.max_sustainable_rps == pytest.approx(endpoint.capacity, rel=0.03)
    assert endpoint.load_seconds <= 180


def test_the_probe_doubles_clients_until_throughput_stops_rising_then_holds() -> None:
    endpoint = QueueEndpoint(slots=6, service_s=2.0, queue=6, clock=FakeClock())
    levels = probe(endpoint)
    # 8 clients already saturate 6 slots; 16 confirm it, with enough answers for fixed times.
    assert [level.clients for level in levels] == [1, 2, 4, 8, 16]
    assert [round(level.throughput, 3) for level in levels] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert probe_estimate(levels) == pytest.approx(3.0, rel=1e-6)
    assert levels[-1].successes >= PROBE_MIN_SUCCESSES


def test_variable_service_times_hold_the_saturating_clients_for_more_answers() -> None:
    assert probe_successes_needed(0.0, 0.03) == PROBE_MIN_SUCCESSES
    assert probe_successes_needed(0.25 / math.sqrt(3), 0.03) == 1482  # 2 x cv / sqrt(n) <= 0.75%
    endpoint = QueueEndpoint(1, 1.0, 8, FakeClock(), spread=0.25)
    levels = probe(endpoint)
    assert [level.clients for level in levels] == [1, 2, 2]  # 1 slot: saturated at once
    assert sum(level.seconds for level in levels) == pytest.approx(PROBE_MAX_SECONDS, abs=2)
    assert levels[-1].successes > 60


def test_a_step_passing_just_below_the_estimate_ends_the_search_there() -> None:
    load = LoadSettings()
    policy = SlowEndpointPolicy.from_estimate(load, estimate=2.0, latency_s=1.0)
    first = policy.next_step([])
    assert isinstance(first, StepPlan) and first.rate == pytest.approx(2.0 * (1 - 0.03 / 4))
    # Warm-up: two latencies; window: 40 requests (20.2 s) rather than the fixed 8 s.
    assert first.warmup_seconds == 2.0 and first.seconds == pytest.approx(2 + 40 / first.rate)
    passed = MeasuredStep(first, _slow_outcome(first, first.rate, []))
    assert isinstance(policy.next_step([passed]), EndSearch)


def _slow_outcome(
    plan: StepPlan, achieved: float, reasons: list[str], p50_ms: float = 1000.0
) -> StepOutcome:
    outcome = _outcome(plan, achieved, reasons)
    outcome.result.p50_ms = p50_ms
    return outcome


def test_an_endpoint_faster_than_when_probed_is_searched_upwards() -> None:
    # Probed cold (1 s a request, 2 rps); the first step answers in 200 ms: the probe is stale.
    policy = SlowEndpointPolicy.from_estimate(LoadSettings(), estimate=2.0, latency_s=1.0)
    first = policy.next_step([])
    assert isinstance(first, StepPlan)
    passed = MeasuredStep(first, _slow_outcome(first, first.rate, [], p50_ms=200.0))
    grown = policy.next_step([passed])
    assert isinstance(grown, StepPlan) and grown.rate == pytest.approx(2 * first.rate)


def test_a_failing_first_step_searches_downwards_from_its_rising_latency_estimate() -> None:
    policy = SlowEndpointPolicy.from_estimate(LoadSettings(), estimate=2.0, latency_s=1.0)
    first = policy.next_step([])
    assert isinstance(first, StepPlan)
    failed = MeasuredStep(first, _slow_outcome(first, 1.5, ["latency kept rising"]))
    second = policy.next_step([failed])
    assert isinstance(second, StepPlan) and second.rate == pytest.approx(1.5 * 0.985)


def test_an_estimate_above_max_rps_is_a_rate_limit() -> None:
    policy = SlowEndpointPolicy.from_estimate(LoadSettings(max_rps=1.0), 2.0, latency_s=1.0)
    first = policy.next_step([])
    assert isinstance(first, StepPlan) and first.rate == 1.0
    decision = policy.next_step([MeasuredStep(first, _slow_outcome(first, 1.0, []))])
    assert isinstance(decision, EndSearch) and decision.bottleneck == "rate-limit"


def test_only_endpoints_a_fixed_step_cannot_judge_take_the_slow_path() -> None:
    load = LoadSettings()  # 3% of a 8 s window must hold KEEP_UP_SLACK = 3 answers: 12.5 rps
    assert choose_slow_search(load, sequential_rps=1.0)
    assert choose_slow_search(load, sequential_rps=10.0)
    assert not choose_slow_search(load, sequential_rps=25.0)
    assert not choose_slow_search(LoadSettings(step_seconds=60), sequential_rps=10.0)


def test_the_probe_leaves_half_of_a_short_max_seconds_to_the_open_loop_steps() -> None:
    assert probe_budget(LoadSettings(max_seconds=900)) == PROBE_MAX_SECONDS
    assert probe_budget(LoadSettings(max_seconds=40, step_seconds=4)) == 20
    levels = [ProbeLevel(1, 1.0, 0, 0.0), ProbeLevel(2, 2.0, 4, 4.0)]
    assert next_probe(levels, 19.0, 20, budget_seconds=20) == ProbePlan(4, 3, 0, 1.0)
    assert next_probe(levels, 20.0, 20, budget_seconds=20) is None
