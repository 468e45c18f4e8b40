"""Worst-case cost of one run: the most instance-hours it can bill, and what they cost.

Every instance type's endpoint is up, at most, for the sum of its phases' bounds:
deploy + smoke test + warm-up + load + cleanup. Each bound below is the timeout the code
enforces, not a typical duration. The smoke test's bounds and the stack's defaults are read
from their homes (``rightsizer.smoke``, ``rightsizer.aws.smoke``, ``rightsizer.aws.settings``);
the rest are copies, because their homes are not importable here (the load engine needs
Locust; the template and the state machine are not packaged with the functions):
``tests/test_bad_inputs.py`` checks each copy against its source, so a change there cannot
silently make this estimate low.

The estimate is per type, summed over all types, whatever ``concurrency`` is: running types
side by side changes the wall-clock time, not the instance-hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from rightsizer.schema import BenchmarkInput, LoadSettings, suggest_instance_type
from rightsizer.smoke import ANSWER_TIMEOUT_SECONDS

# --- local bounds (rightsizer run) --------------------------------------------------------------
LOCAL_DEPLOY_SECONDS = 180.0  # pipeline.DEPLOY_TIMEOUT_SECONDS: /ping must answer by then
LOCAL_SMOKE_SECONDS_PER_PAYLOAD = ANSWER_TIMEOUT_SECONDS  # pipeline's socket timeout each
LOADGEN_START_SECONDS = 60.0  # LoadGenerator(start_timeout=60): workers must report ready
WARM_UP_SECONDS = 60.0  # engine.WARM_UP_MAX_SECONDS: sequential requests until latency settles
REPLY_SLACK_SECONDS = 30.0  # LoadGenerator waits this long past a warm-up or step for answers
STEP_START_DELAY_SECONDS = 0.3  # loadgen.processes.START_DELAY_SECONDS
COOL_DOWN_SECONDS = 30.0  # engine.MAX_COOL_DOWN_SECONDS: pause after a failing step
LEGACY_SLACK_SECONDS = 60.0  # LoadGenerator.legacy waits max_seconds + 60 s
WORKER_STOP_SECONDS = 20.0  # LoadGenerator.close, per worker: 10 s answer + 5 s join + 5 s kill
ENDPOINT_STOP_SECONDS = 10.0  # LocalEndpoint.delete: SIGTERM, 5 s, SIGKILL, 5 s

# --- AWS bounds (the Step Functions state machine) ----------------------------------------------
AWS_SMOKE_LAMBDA_SECONDS = 900  # template SmokeTestFunction Timeout
# The ASL's Retry blocks, worst case: each retrier counts its own attempts (MaxAttempts counts
# retries: 3 is up to 4 tries), so a state can retry the sum of its retriers' MaxAttempts and
# wait the sum of their waits, which grow by BackoffRate (FULL jitter only shortens them).
AWS_LAMBDA_RETRIES = 3  # ASL SmokeTest
AWS_LAMBDA_RETRY_WAITS = 2 + 4 + 8  # ASL SmokeTest
AWS_CREATE_ENDPOINT_RETRY_WAITS = 5 + 10 + 20 + 40 + 80  # ASL CreateEndpoint
AWS_DELETE_ENDPOINT_RETRY_WAITS = 0  # ASL DeleteEndpoint: no Retry, its loop retries
AWS_ECS_RETRY_WAITS = (10 + 20 + 40) + (30 + 60 + 120)  # ASL LoadTest (RunTask refused)
# The state machine's TimeoutSeconds: a backstop (every state has its own bound), so an input
# whose worst case would not fit is refused up front rather than cut off mid-run.
AWS_EXECUTION_TIMEOUT_SECONDS = 172_800


@dataclass(frozen=True)
class PhaseBounds:
    """Seconds one instance type's endpoint can be up, at most, in each phase."""

    where: Literal["local", "aws"]
    deploy: float
    smoke: float
    warm_up: float
    load: float
    cleanup: float

    @property
    def seconds(self) -> float:
        return self.deploy + self.smoke + self.warm_up + self.load + self.cleanup

    def describe(self) -> str:
        text = (
            f"deploy {self.deploy:.0f} s + smoke test {self.smoke:.0f} s + warm-up "
            f"{self.warm_up:.0f} s + load {self.load:.0f} s + cleanup {self.cleanup:.0f} s"
        )
        return f"{self.where} bounds per type: {text} = {self.seconds:.0f} s"


class StackLimits(Protocol):
    """What the deployed stack sets (``rightsizer.aws.settings.Settings`` has these)."""

    @property
    def poll_seconds(self) -> int: ...
    @property
    def max_polls(self) -> int: ...
    @property
    def loadgen_startup_seconds(self) -> int: ...


def default_stack() -> StackLimits:
    """The template's defaults, for estimates made away from a deployed stack."""
    from rightsizer.aws.settings import Settings

    return Settings(name_prefix="", results_bucket="", region="")


def aws_smoke_try_seconds(payloads: int) -> float:
    """One try of the smoke Lambda: each payload read and answered, within its Timeout."""
    from rightsizer.aws.smoke import ANSWER_BOUND_SECONDS, S3_READ_BOUND_SECONDS, WRAP_UP_SECONDS

    per_payload = S3_READ_BOUND_SECONDS + ANSWER_BOUND_SECONDS
    return float(min(AWS_SMOKE_LAMBDA_SECONDS, payloads * per_payload + WRAP_UP_SECONDS))


def load_bound(load: LoadSettings) -> float:
    """Seconds the local load engine can spend measuring one type, after its warm-up.

    The search starts a step only while ``elapsed + step_seconds <= max_seconds`` and runs at
    most ``max_steps``; a started step can last step + drain + the reply slack, plus a
    cool-down after a failing step. The legacy ramp stops at ``max_seconds`` (+ its slack).
    """
    if load.method == "legacy":
        return load.max_seconds + LEGACY_SLACK_SECONDS
    return max(_fixed_step_bound(load), _slow_path_bound(load))


def _fixed_step_bound(load: LoadSettings) -> float:
    if load.max_seconds < load.step_seconds:
        return 0.0
    drain = min(load.request_timeout_seconds, max(2.0, load.step_seconds / 2))
    step = (
        STEP_START_DELAY_SECONDS + load.step_seconds + drain + REPLY_SLACK_SECONDS
        + COOL_DOWN_SECONDS
    )
    by_time = load.max_seconds - load.step_seconds + step
    return min(by_time, load.max_steps * step)


def _slow_path_bound(load: LoadSettings) -> float:
    """The slow-endpoint path (``slow_search``): the probe, within ``probe_budget`` plus its last
    level's drain; then steps that end by ``max_seconds`` (probe included; none when the probe
    took it all), the last of which may drain for up to a request timeout, reply late and cool
    down."""
    from rightsizer.slow_search import probe_budget

    overrun = load.request_timeout_seconds + REPLY_SLACK_SECONDS
    probe = probe_budget(load) + overrun
    last_step = STEP_START_DELAY_SECONDS + overrun + COOL_DOWN_SECONDS
    return max(load.max_seconds + last_step, probe)


def local_bounds(bench: BenchmarkInput) -> PhaseBounds:
    """Bounds of ``rightsizer run`` (pipeline.benchmark_type) for one type of ``bench``."""
    load = bench.load
    return PhaseBounds(
        where="local",
        deploy=LOCAL_DEPLOY_SECONDS,
        smoke=LOCAL_SMOKE_SECONDS_PER_PAYLOAD * len(bench.payloads),
        # The warm-up, then (slow path) at most one more call lengthening it to 20 s.
        warm_up=LOADGEN_START_SECONDS
        + WARM_UP_SECONDS
        + 2 * (load.request_timeout_seconds + REPLY_SLACK_SECONDS),
        load=load_bound(load),
        cleanup=WORKER_STOP_SECONDS * load.processes + ENDPOINT_STOP_SECONDS,
    )


def aws_bounds(bench: BenchmarkInput, stack: StackLimits | None = None) -> PhaseBounds:
    """Bounds of the state machine's Map iteration for one type (statemachine/rightsize.asl.json).

    Deploy: CreateEndpoint (with its retries), then the poll loop, which waits
    ``poll_seconds`` before each DescribeEndpoint and gives up after ``max_polls`` + 1 waits
    (polls counts 0..max). Smoke test: four tries of the Lambda, each reading and invoking every
    payload within its Timeout (``aws_smoke_try_seconds``). Warm-up and load:
    the ECS task's TimeoutSeconds, ``int(load.max_seconds) + loadgen_startup_seconds``, plus
    RunTask's retry waits (a refused RunTask fails at once; a task that ran is not retried).
    Cleanup: DeleteEndpoint, which SageMaker may refuse (throttled, or still Creating after a
    failed deploy): the deletion loop tries again every ``poll_seconds``, up to ``max_polls``
    times, on every path; billing stops when a delete is accepted. Throttling retries of each
    DescribeEndpoint poll are not counted.
    """
    stack = stack or default_stack()
    deletion = float(AWS_DELETE_ENDPOINT_RETRY_WAITS) + stack.max_polls * stack.poll_seconds
    return PhaseBounds(
        where="aws",
        deploy=AWS_CREATE_ENDPOINT_RETRY_WAITS + (stack.max_polls + 1) * stack.poll_seconds,
        smoke=(AWS_LAMBDA_RETRIES + 1) * aws_smoke_try_seconds(len(bench.payloads))
        + AWS_LAMBDA_RETRY_WAITS,
        warm_up=float(stack.loadgen_startup_seconds),
        load=float(int(bench.load.max_seconds) + AWS_ECS_RETRY_WAITS),
        cleanup=deletion,
    )


def bounds_for(bench: BenchmarkInput) -> PhaseBounds:
    """Local bounds for local profiles, the default stack's bounds for SageMaker types."""
    return local_bounds(bench) if bench.specs[0].is_local else aws_bounds(bench)


@dataclass(frozen=True)
class TypeCost:
    instance_type: str
    count: int
    hours: float  # per instance
    price_per_hour: float

    @property
    def instance_hours(self) -> float:
        return self.count * self.hours

    @property
    def usd(self) -> float:
        return self.instance_hours * self.price_per_hour


@dataclass(frozen=True)
class CostEstimate:
    bounds: PhaseBounds
    types: tuple[TypeCost, ...]

    @property
    def instance_hours(self) -> float:
        return sum(t.instance_hours for t in self.types)

    @property
    def usd(self) -> float:
        return sum(t.usd for t in self.types)


def worst_case(
    bench: BenchmarkInput, prices: Mapping[str, float], bounds: PhaseBounds | None = None
) -> CostEstimate:
    """Per type: count x (sum of phase bounds) hours x USD per instance-hour, and the total.

    ``prices`` must hold every type (``pricing.resolve_prices`` gives that).
    """
    bounds = bounds or bounds_for(bench)
    hours = bounds.seconds / 3600.0
    types = tuple(
        TypeCost(s.instance_type, s.count, hours, prices[s.instance_type]) for s in bench.specs
    )
    return CostEstimate(bounds, types)


def at_most(usd: float) -> str:
    """Dollars rounded up to the cent: an upper bound stays an upper bound."""
    return f"${math.ceil(round(usd * 100, 6)) / 100:,.2f}"


def cap_problem(bench: BenchmarkInput, estimate: CostEstimate) -> str | None:
    """The ``max_cost_usd`` error line when the worst case is above the input's cap, else None."""
    cap = bench.max_cost_usd
    if cap is None or estimate.usd <= cap:
        return None
    return (
        f"max_cost_usd: the worst case is at most {at_most(estimate.usd)} "
        f"({estimate.instance_hours:.2f} instance-hours over {len(estimate.types)} types; "
        f"{estimate.bounds.describe()}), above the cap of ${cap:,.2f}: raise max_cost_usd to "
        f"at least {at_most(estimate.usd)}, test fewer instance types, or lower "
        f"load.max_seconds (now {bench.load.max_seconds:g} s)"
    )


def format_estimate(estimate: CostEstimate) -> str:
    """A table, one row per type, and the total: 'at most N instance-hours, at most $X'."""
    header = ("type", "count", "hours", "instance-hours", "$/hour", "$ at most")
    rows = [header] + [
        (
            t.instance_type,
            str(t.count),
            f"{t.hours:.2f}",
            f"{t.instance_hours:.2f}",
            f"{t.price_per_hour:.4g}",
            at_most(t.usd).lstrip("$"),
        )
        for t in estimate.types
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(
        [
            f"worst-case cost ({estimate.bounds.describe()}):",
            *("  " + line.rstrip() for line in lines),
            f"at most {estimate.instance_hours:.2f} instance-hours, at most "
            f"{at_most(estimate.usd)}",
        ]
    )


def missing_price_lines(
    bench: BenchmarkInput, missing: Sequence[str], where: str = "the bundled price table"
) -> list[str]:
    """One ``instance_types[i]: ...`` line per type without a price, with a likely fix."""
    lines = []
    for index, spec in enumerate(bench.specs):
        if spec.instance_type not in missing:
            continue
        name = spec.instance_type
        guess = suggest_instance_type(name)
        hint = f" Did you mean {guess!r}?" if guess and guess != name else ""
        lines.append(
            f"instance_types[{index}]: no price for {name!r} in {bench.region} (not in the "
            f'input\'s "prices" nor in {where}).{hint} If {name!r} is right, add its USD per '
            f'instance-hour to the input: "prices": {{"{name}": 1.23}} (see the SageMaker '
            "pricing page, On-Demand, Real-Time Inference)"
        )
    return lines


def worst_case_seconds(bench: BenchmarkInput, bounds: PhaseBounds, concurrency: int) -> float:
    """Wall-clock bound of the whole run: the types go in waves of ``concurrency``."""
    waves = -(-len(bench.specs) // max(1, concurrency))
    return waves * bounds.seconds


def duration_problem(bench: BenchmarkInput, bounds: PhaseBounds, concurrency: int) -> str | None:
    """A problem line when the worst case cannot finish within the execution's bound."""
    seconds = worst_case_seconds(bench, bounds, concurrency)
    if seconds <= AWS_EXECUTION_TIMEOUT_SECONDS:
        return None
    bound_hours = AWS_EXECUTION_TIMEOUT_SECONDS / 3600
    return (
        f"instance_types: {len(bench.specs)} types {concurrency} at a time can take up to "
        f"{seconds / 3600:.1f} h, over the execution's {bound_hours:.0f} h "
        "bound: raise concurrency, split the types over several executions, or lower "
        "load.max_seconds"
    )
