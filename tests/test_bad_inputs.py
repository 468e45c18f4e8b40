"""Every malformed input in tests/bad_inputs/ is refused, naming the field, twice over:

* locally by ``rightsizer validate FILE`` (exit code 2, the field on stderr), and
* by the AWS validate step's logic (``rightsizer.aws.validate.plan_run`` with an in-memory S3),
  before it writes anything, so before any SageMaker resource can exist.

``manifest.json`` says, per file, which field the error must name. Inputs too big to commit
(a payload over SageMaker's 6 MB invoke limit) are generated here in ``tmp_path``. Also here:
the worst-case cost (``rightsizer.cost``) and its ``max_cost_usd`` cap, and checks that the cost
bounds still equal the timeouts of the code they mirror.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rightsizer import cli, cost
from rightsizer.aws.events import ValidateEvent
from rightsizer.aws.settings import Settings
from rightsizer.aws.validate import InvalidInput, plan_run
from rightsizer.pricing import BundledPrices, resolve_prices
from rightsizer.schema import MAX_PAYLOAD_BYTES, BenchmarkInput

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "bad_inputs"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())["cases"]
BUCKET = "rightsizer-results-test"
PAYLOAD_KEY = "payloads/cat.jpg"
SETTINGS = Settings(
    name_prefix="rightsizer", results_bucket=BUCKET, region="us-east-1", use_pricing_api=False
)
EXECUTION = {
    "name": "bad-input-test",
    "arn": "arn:aws:states:us-east-1:123456789012:execution:rightsizer-rightsize:bad-input-test",
    "start_time": "2026-11-25T19:44:00.000Z",
}
# The inputs the corpus is made from; both are valid (see the control tests below).
ARN = "arn:aws:sagemaker:us-east-1:865070037744:model-package/pytorch-ic-resnet50-1-a1b2c3d4"
AWS_BASE: dict[str, Any] = {
    "name": "bad-input",
    "model": {"kind": "model_package", "arn": ARN},
    "instance_types": ["ml.c5.xlarge"],
    "payloads": [{"path": f"s3://{BUCKET}/{PAYLOAD_KEY}", "content_type": "application/x-image"}],
    "traffic": {"min_rps": 1, "max_rps": 10},
}
LOCAL_BASE: dict[str, Any] = {
    "name": "bad-input-local",
    "model": {"kind": "synthetic"},
    "instance_types": ["local.1cpu"],
    "payloads": [{"path": "payloads/ok.json", "content_type": "application/json"}],
    "traffic": {"min_rps": 1, "max_rps": 10},
    "prices": {"local.1cpu": 0.05},
}


class FakeS3:
    """The two S3 calls the validate step makes; records every write."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = {PAYLOAD_KEY: b"JFIF fake jpeg bytes"} if objects is None else objects
        self.writes: list[str] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Bucket != BUCKET or Key not in self.objects:
            error = {"Error": {"Code": "NoSuchKey", "Message": "The key does not exist"}}
            raise ClientError(error, "GetObject")  # type: ignore[arg-type]
        return {"Body": io.BytesIO(self.objects[Key])}

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.writes.append(request["Key"])
        return {}


def aws_validate(raw: Any, s3: FakeS3 | None = None) -> tuple[str | None, FakeS3]:
    """The AWS validate step's answer: its InvalidInput message, or None when it accepts."""
    s3 = s3 or FakeS3()
    event = ValidateEvent(input=raw, execution=EXECUTION)  # type: ignore[arg-type]
    try:
        plan_run(event, SETTINGS, s3=s3, price_source=BundledPrices())
    except InvalidInput as exc:
        return str(exc), s3
    return None, s3


def local_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def names_field(message: str, field: str) -> bool:
    """``field`` is the path at the start of one of the message's lines (``field: ...``)."""
    return any(line.startswith(f"{field}:") for line in message.splitlines())


def raw_of(path: Path) -> Any:
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # the execution's input as a string: the validate step parses it


def write_input(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / "input.json"
    path.write_text(json.dumps(data))
    return path


# --- the corpus ---------------------------------------------------------------------------------


def test_the_manifest_lists_every_corpus_file_and_nothing_else() -> None:
    files = {p.name for p in CORPUS.glob("*.json")} - {"manifest.json"}
    assert files == set(MANIFEST)
    assert len(files) >= 35


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_rightsizer_validate_rejects_naming_the_field(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = MANIFEST[name]
    code, out, err = local_validate(CORPUS / name, capsys)
    assert code == cli.EXIT_INVALID, out
    assert "valid." not in out
    assert names_field(err, case["field"]), err
    for text in case.get("says", []):
        assert text in err, err


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_aws_validate_step_rejects_before_writing_anything(name: str) -> None:
    case = MANIFEST[name]
    if "aws_skip" in case:
        pytest.skip(case["aws_skip"])
    message, s3 = aws_validate(raw_of(CORPUS / name))
    assert message is not None, "accepted on AWS"
    field = case.get("aws_field", case["field"])
    assert names_field(message, field), message
    assert s3.writes == []  # nothing written, and the state machine creates nothing after this


def test_the_bases_of_the_corpus_are_valid_locally_and_on_aws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "ok.json").write_text("{}")
    for base in (AWS_BASE, LOCAL_BASE):
        code, out, err = local_validate(write_input(tmp_path, base), capsys)
        assert (code, err) == (0, ""), err
        assert "valid." in out
    message, s3 = aws_validate(AWS_BASE)
    assert message is None
    assert s3.writes  # it did plan the run (so the rejections above are the inputs' fault)


# --- payloads too big to commit, unreadable ones, and the AWS side of payload objects ---------


def test_a_payload_file_over_6_mb_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "ok.json").write_bytes(b"x" * (MAX_PAYLOAD_BYTES + 1))
    code, _, err = local_validate(write_input(tmp_path, LOCAL_BASE), capsys)
    assert code == cli.EXIT_INVALID
    assert names_field(err, "payloads[0]") and "6 MB invoke limit" in err


def test_a_payload_of_exactly_6_mb_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "ok.json").write_bytes(b"x" * MAX_PAYLOAD_BYTES)
    code, _, err = local_validate(write_input(tmp_path, LOCAL_BASE), capsys)
    assert (code, err) == (0, "")


def test_an_inline_body_over_6_mb_is_rejected_locally_and_on_aws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(AWS_BASE)
    data["payloads"] = [{"body": "x" * (MAX_PAYLOAD_BYTES + 1), "content_type": "text/plain"}]
    code, _, err = local_validate(write_input(tmp_path, data), capsys)
    assert code == cli.EXIT_INVALID and names_field(err, "payloads[0]")
    assert "6 MB" in err and len(err) < 2000  # the body is not echoed back
    message, s3 = aws_validate(data)
    assert message is not None and names_field(message, "payloads[0]") and s3.writes == []


def test_an_unreadable_payload_file_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "payloads" / "ok.json"
    payload.parent.mkdir()
    payload.write_bytes(b"{}")
    payload.chmod(0)
    try:
        if payload.stat().st_mode & 0o777 == 0 and _readable(payload):
            pytest.skip("running as root: file modes do not stop reads (see the directory case)")
        code, _, err = local_validate(write_input(tmp_path, LOCAL_BASE), capsys)
    finally:
        payload.chmod(0o644)
    assert code == cli.EXIT_INVALID and names_field(err, "payloads[0].path")
    assert "cannot read" in err


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("objects", "field", "says"),
    [
        ({}, "payloads[0].path", "NoSuchKey"),
        ({PAYLOAD_KEY: b""}, "payloads[0]", "empty"),
        ({PAYLOAD_KEY: b"x" * (MAX_PAYLOAD_BYTES + 1)}, "payloads[0]", "6 MB invoke limit"),
    ],
    ids=["missing", "empty", "over-6-mb"],
)
def test_the_aws_step_rejects_bad_payload_objects(
    objects: dict[str, bytes], field: str, says: str
) -> None:
    message, s3 = aws_validate(AWS_BASE, FakeS3(objects))
    assert message is not None and names_field(message, field) and says in message
    assert s3.writes == []


# --- the worst-case cost and its cap ----------------------------------------------------------


def test_validate_prints_the_worst_case_for_local_inputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = local_validate(ROOT / "examples/local/digits-input.json", capsys)
    assert code == 0
    assert re.search(r"at most \d+\.\d\d instance-hours, at most \$\d+\.\d\d", out)
    assert "local.1cpu" in out and "local bounds per type" in out


def test_validate_prints_the_worst_case_for_sagemaker_inputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = local_validate(ROOT / "examples/aws/resnet50-input.json", capsys)
    assert code == 0
    assert "aws bounds per type" in out and "ml.g4dn.xlarge" in out
    assert "within the cap max_cost_usd = $25.00" in out


def test_worst_case_is_count_times_bounds_times_price() -> None:
    data = {**AWS_BASE, "instance_types": [
        "ml.c5.xlarge", {"instance_type": "ml.m5.xlarge", "count": 3}]}
    bench = BenchmarkInput.model_validate(data)
    prices = {"ml.c5.xlarge": 0.2, "ml.m5.xlarge": 1.0}
    bounds = cost.PhaseBounds("aws", deploy=600, smoke=0, warm_up=0, load=3000, cleanup=0)
    estimate = cost.worst_case(bench, prices, bounds)
    assert [t.instance_hours for t in estimate.types] == [1.0, 3.0]
    assert estimate.instance_hours == 4.0
    assert estimate.usd == pytest.approx(0.2 + 3.0)


def test_aws_bounds_follow_the_poll_loop_and_the_load_bound() -> None:
    bench = BenchmarkInput.model_validate({**AWS_BASE, "load": {"max_seconds": 900}})
    bounds = cost.aws_bounds(bench, SETTINGS)
    polls = SETTINGS.max_polls
    assert bounds.deploy == (
        cost.AWS_CREATE_ENDPOINT_RETRY_WAITS + (polls + 1) * SETTINGS.poll_seconds)
    assert bounds.warm_up + bounds.load == (
        900 + SETTINGS.loadgen_startup_seconds + cost.AWS_ECS_RETRY_WAITS)
    assert bounds.seconds >= (
        SETTINGS.deploy_timeout_seconds + 900 + SETTINGS.loadgen_startup_seconds
    )


def test_the_smoke_bound_grows_with_the_payloads_up_to_the_lambdas_timeout() -> None:
    from rightsizer.aws import smoke

    per_payload = smoke.S3_READ_BOUND_SECONDS + smoke.ANSWER_BOUND_SECONDS
    one = cost.aws_smoke_try_seconds(1)
    assert one == per_payload + smoke.WRAP_UP_SECONDS
    assert cost.aws_smoke_try_seconds(3) == 3 * per_payload + smoke.WRAP_UP_SECONDS
    assert cost.aws_smoke_try_seconds(20) == cost.AWS_SMOKE_LAMBDA_SECONDS
    bench = BenchmarkInput.model_validate(AWS_BASE)
    assert cost.aws_bounds(bench, SETTINGS).smoke == (
        (cost.AWS_LAMBDA_RETRIES + 1) * one + cost.AWS_LAMBDA_RETRY_WAITS)


def test_the_local_load_bound_covers_the_last_step_and_the_step_count() -> None:
    load = {"step_seconds": 10, "warmup_seconds": 2, "max_seconds": 100, "max_steps": 25}
    bench = BenchmarkInput.model_validate({**LOCAL_BASE, "load": load})
    step = 0.3 + 10 + 5 + 30 + 30  # start delay, step, drain, reply slack, cool-down
    # Which path the search takes is known only after the warm-up: the bound covers both.
    slow = 100 + 0.3 + (60 + 30) + 30  # steps end by max_seconds; a request timeout's drain
    assert cost.load_bound(bench.load) == pytest.approx(max(100 - 10 + step, slow))
    few = bench.load.model_copy(update={"max_steps": 2, "max_seconds": 1000})
    assert cost.load_bound(few) == pytest.approx(1000 + 0.3 + 90 + 30)  # the slow path's
    fast = bench.load.model_copy(update={"max_steps": 2, "request_timeout_seconds": 1})
    assert cost.load_bound(fast) == pytest.approx(
        max(2 * (0.3 + 10 + 1 + 30 + 30), 100 + 0.3 + 31 + 30))
    # The probe gets half of max_seconds, and may overrun by a drain: then no step follows.
    short = bench.load.model_copy(update={"max_seconds": 20, "step_seconds": 4})
    assert cost.load_bound(short) == pytest.approx(max(20 + 0.3 + 90 + 30, 10 + 90))
    legacy = bench.load.model_copy(update={"method": "legacy"})
    assert cost.load_bound(legacy) == 100 + 60


def test_the_cap_fails_above_the_worst_case_and_passes_at_it() -> None:
    bench = BenchmarkInput.model_validate(AWS_BASE)
    estimate = cost.worst_case(bench, resolve_prices(bench))
    above = bench.model_copy(update={"max_cost_usd": estimate.usd * 0.99})
    problem = cost.cap_problem(above, estimate)
    assert problem is not None and problem.startswith("max_cost_usd: the worst case is at most $")
    assert "raise max_cost_usd" in problem and "load.max_seconds" in problem
    assert cost.cap_problem(bench.model_copy(update={"max_cost_usd": estimate.usd}), estimate) \
        is None
    assert cost.cap_problem(bench, estimate) is None  # no cap


def test_at_most_rounds_up_to_the_cent() -> None:
    assert cost.at_most(0.001) == "$0.01"
    assert cost.at_most(1.0) == "$1.00"
    assert cost.at_most(2.461) == "$2.47"


def test_the_cost_bounds_equal_the_timeouts_in_the_code() -> None:
    """cost.py mirrors these (it must stay importable by the Lambda without pandas/locust)."""
    from rightsizer import engine, pipeline
    from rightsizer.endpoints import local
    from rightsizer.loadgen import processes

    assert cost.LOCAL_DEPLOY_SECONDS == pipeline.DEPLOY_TIMEOUT_SECONDS
    assert cost.WARM_UP_SECONDS == engine.WARM_UP_MAX_SECONDS
    assert cost.COOL_DOWN_SECONDS == engine.MAX_COOL_DOWN_SECONDS
    assert cost.STEP_START_DELAY_SECONDS == processes.START_DELAY_SECONDS
    assert cost.ENDPOINT_STOP_SECONDS == 2 * local.STOP_GRACE_S
    source = Path(processes.__file__).read_text()
    assert "start_timeout: float = 60.0" in source
    assert "max_seconds + self.request_timeout + 30" in source  # warm-up reply bound
    assert "seconds + drain + START_DELAY_SECONDS + 30" in source  # step reply bound
    assert 'settings["max_seconds"] + 60' in source  # legacy reply bound


# --- cost.py's AWS constants against their sources: template.yaml and the state machine -------


def _template_default(template: str, parameter: str) -> int:
    block = template[template.index(f"\n  {parameter}:"):]
    found = re.search(r"\n    Default: \"?(\d+)", block)
    assert found, f"template.yaml: parameter {parameter} has no numeric Default"
    return int(found[1])


def _function_timeout(template: str, function: str) -> int:
    block = template[template.index(f"\n  {function}:"):]
    found = re.search(r"\n      Timeout: (\d+)", block)
    assert found, f"template.yaml: {function} sets no Timeout"
    return int(found[1])


def _iteration_states() -> dict[str, Any]:
    asl = json.loads((ROOT / "statemachine/rightsize.asl.json").read_text())
    states: dict[str, Any] = asl["States"]["TestEachType"]["ItemProcessor"]["States"]
    return states


def _retry_worst_case(state: dict[str, Any]) -> tuple[int, float]:
    """(retries, seconds waited) at most, from a Task's Retry blocks as Step Functions runs them.

    Each retrier counts its own attempts, so the worst case is the sum over retriers; the n-th
    wait is IntervalSeconds x BackoffRate^n, capped by MaxDelaySeconds (jitter only shortens).
    """
    retries, waited = 0, 0.0
    for rule in state.get("Retry", []):
        attempts = rule.get("MaxAttempts", 3)
        interval, rate = rule.get("IntervalSeconds", 1), rule.get("BackoffRate", 2.0)
        cap = rule.get("MaxDelaySeconds", float("inf"))
        retries += attempts
        waited += sum(min(interval * rate**n, cap) for n in range(attempts))
    return retries, waited


def test_cost_retry_constants_match_the_state_machines_retry_blocks() -> None:
    states = _iteration_states()
    for state, constant in (("CreateEndpoint", "AWS_CREATE_ENDPOINT_RETRY_WAITS"),
                            ("DeleteEndpoint", "AWS_DELETE_ENDPOINT_RETRY_WAITS"),
                            ("LoadTest", "AWS_ECS_RETRY_WAITS"),
                            ("SmokeTest", "AWS_LAMBDA_RETRY_WAITS")):
        _, waited = _retry_worst_case(states[state])
        assert getattr(cost, constant) == waited, (
            f"the ASL's {state} Retry blocks can wait {waited:g} s in all, but cost.{constant} "
            f"is {getattr(cost, constant)}: set it to {waited:g}"
        )
    retries, _ = _retry_worst_case(states["SmokeTest"])
    assert retries == cost.AWS_LAMBDA_RETRIES, (
        f"the ASL's SmokeTest can be retried {retries} times, but cost.AWS_LAMBDA_RETRIES is "
        f"{cost.AWS_LAMBDA_RETRIES}: set it to {retries}"
    )


def test_the_retry_worst_case_sums_every_retrier_and_caps_each_wait() -> None:
    state = {"Retry": [
        {"ErrorEquals": ["A"], "IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 2.0},
        {"ErrorEquals": ["B"], "IntervalSeconds": 30, "MaxAttempts": 2, "MaxDelaySeconds": 40},
    ]}
    assert _retry_worst_case(state) == (5, 10 + 20 + 40 + 30 + 40)
    assert _retry_worst_case({}) == (0, 0.0)


def test_the_poll_loop_is_what_the_deploy_bound_assumes() -> None:
    item = _iteration_states()
    # The poll loop waits before every DescribeEndpoint, counting polls from 0 up to max.
    assert item["StartPolling"]["Result"] == {"polls": 0}
    assert item["WaitForEndpoint"]["SecondsPath"] == "$.item.poll.seconds"
    assert {"Variable": "$.wait.polls", "NumericGreaterThanEqualsPath": "$.item.poll.max",
            "Next": "EndpointNotReady"} in item["EndpointReady"]["Choices"]
    assert item["LoadTest"]["TimeoutSecondsPath"] == "$.item.loadgen.timeout_seconds"


def test_the_stack_defaults_are_the_templates() -> None:
    from rightsizer.aws import settings

    template = (ROOT / "template.yaml").read_text()
    for parameter, default in (("DeployTimeoutSeconds", settings.DEFAULT_DEPLOY_TIMEOUT_SECONDS),
                               ("PollSeconds", settings.DEFAULT_POLL_SECONDS)):
        assert _template_default(template, parameter) == default, (
            f"template.yaml {parameter} Default differs from "
            f"rightsizer.aws.settings ({default}): make them equal"
        )
    stack = cost.default_stack()
    assert (stack.poll_seconds, stack.loadgen_startup_seconds) == (
        settings.DEFAULT_POLL_SECONDS, settings.DEFAULT_LOADGEN_STARTUP_SECONDS)


def test_the_smoke_lambdas_timeout_holds_its_worst_case() -> None:
    """All payloads read (20 at most), then one whole answer: the budget covers the rest."""
    from annotated_types import MaxLen

    from rightsizer.aws import smoke

    timeout = _function_timeout((ROOT / "template.yaml").read_text(), "SmokeTestFunction")
    assert timeout == cost.AWS_SMOKE_LAMBDA_SECONDS, (
        f"template.yaml SmokeTestFunction Timeout is {timeout}, "
        f"cost.AWS_SMOKE_LAMBDA_SECONDS is {cost.AWS_SMOKE_LAMBDA_SECONDS}: make them equal"
    )
    (most,) = (m.max_length for m in BenchmarkInput.model_fields["payloads"].metadata
               if isinstance(m, MaxLen))
    first_answer = most * smoke.S3_READ_BOUND_SECONDS + smoke.ANSWER_BOUND_SECONDS
    needed = first_answer + smoke.WRAP_UP_SECONDS
    assert needed <= timeout <= 900, (  # 900 s: Lambda's maximum
        f"SmokeTestFunction needs a Timeout of at least {needed} s for {most} payloads")


def test_missing_price_lines_name_the_entry_and_the_fix() -> None:
    bench = BenchmarkInput.model_validate(
        {**AWS_BASE, "instance_types": ["ml.c5.xlarge", "ml.c5.9xlarge"]})
    (line,) = cost.missing_price_lines(bench, ["ml.c5.9xlarge"])
    assert line.startswith("instance_types[1]: no price for 'ml.c5.9xlarge' in us-east-1")
    assert '"prices": {"ml.c5.9xlarge": 1.23}' in line


def test_running_an_aws_input_locally_says_to_start_it_on_the_stack(capsys):
    """`rightsizer run` on an input naming SageMaker types: exit 2 and the command to use, not a
    traceback from the local endpoint code."""
    code = cli.main(["run", str(ROOT / "examples" / "aws" / "resnet50-input.json")])
    assert code == 2
    assert "rightsizer start" in capsys.readouterr().err
