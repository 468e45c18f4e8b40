"""``rightsizer schedule``: EventBridge Scheduler schedules for a stack, each with its own input,
checked before the schedule exists; a large input is kept in the bucket and referenced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from harness import BUCKET, EXECUTION, REGION

from rightsizer.aws import input_reference, schedules
from rightsizer.aws.start import Stack
from rightsizer.aws.validate import InvalidInput

STATE_MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:rightsizer-rightsize"
ROLE = "arn:aws:iam::123456789012:role/rightsizer-SchedulerRole-abc"
TARGET = schedules.ScheduleTarget(Stack("rs", STATE_MACHINE, BUCKET), ROLE)


@pytest.fixture
def scheduler(s3: Any) -> Any:
    return boto3.client("scheduler", region_name=REGION)


def an_input(tmp_path: Path, make_input: Any, **overrides: Any) -> Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(make_input("ml.c5.xlarge", **overrides)))
    return path


def test_a_schedule_starts_the_state_machine_with_its_own_input(
    tmp_path, s3, scheduler, payload, make_input
):
    path = an_input(tmp_path, make_input)
    made = schedules.add_schedule(path, TARGET, "rate(7 days)", scheduler=scheduler, s3=s3)
    other = schedules.add_schedule(path, TARGET, "rate(1 day)", scheduler=scheduler, s3=s3,
                                   name="daily")
    assert (made.name, other.name) == ("rs-resnet50", "rs-daily")
    stored = scheduler.get_schedule(Name="rs-resnet50")
    assert stored["Target"]["Arn"] == STATE_MACHINE and stored["Target"]["RoleArn"] == ROLE
    assert json.loads(stored["Target"]["Input"]) == json.loads(path.read_text())
    assert stored["ScheduleExpression"] == "rate(7 days)" and stored["State"] == "ENABLED"

    listed = schedules.list_schedules("rs", scheduler=scheduler)
    assert [s.name for s in listed] == ["rs-daily", "rs-resnet50"]
    schedules.remove_schedule("rs", "daily", scheduler=scheduler, s3=s3)
    assert [s.name for s in schedules.list_schedules("rs", scheduler=scheduler)] == [
        "rs-resnet50"]
    with pytest.raises(schedules.ScheduleError, match="exists"):
        schedules.add_schedule(path, TARGET, "rate(7 days)", scheduler=scheduler, s3=s3)


def test_a_large_input_is_kept_in_the_bucket_and_referenced(
    tmp_path, s3, scheduler, make_input, call
):
    body = "x" * (schedules.INLINE_INPUT_BYTES + 1)
    path = an_input(tmp_path, make_input,
                    payloads=[{"body": body, "content_type": "text/plain"}])
    made = schedules.add_schedule(path, TARGET, "rate(7 days)", scheduler=scheduler, s3=s3)
    assert made.input_uri == f"s3://{BUCKET}/schedules/rs-resnet50/input.json"
    execution_input = json.loads(scheduler.get_schedule(Name=made.name)["Target"]["Input"])
    assert execution_input == {"input_uri": made.input_uri}
    # What Validate reads back is the input itself; an ordinary input passes through.
    original = json.loads(path.read_text())
    assert input_reference.resolve(execution_input, BUCKET, s3) == original
    assert input_reference.resolve(original, BUCKET, s3) == original
    with pytest.raises(ValueError, match="not a schedule's input"):
        input_reference.resolve({"input_uri": "s3://elsewhere/schedules/x"}, BUCKET, s3)
    # And the Validate step itself plans the referenced input.
    plan = call("validate", {"input": execution_input, "execution": EXECUTION})
    assert plan["run"]["run_id"].startswith("resnet50-")
    with pytest.raises(InvalidInput, match=r"^input_uri: s3://elsewhere/schedules/x is not"):
        call("validate", {"input": {"input_uri": "s3://elsewhere/schedules/x"},
                          "execution": EXECUTION})
    schedules.remove_schedule("rs", made.name, scheduler=scheduler, s3=s3)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="schedules/")


@pytest.mark.parametrize(
    ("overrides", "rate", "expected"),
    [({"traffic": {"min_rps": 0, "max_rps": 5}}, "rate(7 days)", "traffic.min_rps"),
     ({}, "rate(1 days)", "--rate")],
)
def test_a_bad_input_or_rate_creates_no_schedule(
    tmp_path, s3, scheduler, payload, make_input, overrides, rate, expected
):
    path = an_input(tmp_path, make_input, **overrides)
    with pytest.raises(schedules.ScheduleError, match=expected):
        schedules.add_schedule(path, TARGET, rate, scheduler=scheduler, s3=s3)
    assert schedules.list_schedules("rs", scheduler=scheduler) == []


def test_a_schedule_name_past_schedulers_64_characters_is_refused_with_the_fix():
    assert schedules.schedule_name("rs", "n" * 61) == "rs-" + "n" * 61
    with pytest.raises(schedules.ScheduleError, match=r"at most 64.*shorter --name"):
        schedules.schedule_name("rs", "n" * 62)
