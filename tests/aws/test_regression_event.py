"""The end of an execution compares it with the previous run of the same name; a regression is
an EventBridge event on the default bus (and an SNS message when the stack has a topic)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from harness import REGION

from rightsizer.aws.alerts import DETAIL_TYPE, PUT_ATTEMPTS, SOURCE, publish_regression
from rightsizer.history import RunRecord, TypeFigures, compare

TYPE = "ml.c5.xlarge"


def output_of(described: dict[str, Any]) -> dict[str, Any]:
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def alert_queue(pattern: dict[str, Any]) -> tuple[Any, str]:
    """An SQS queue that receives what a default-bus rule with ``pattern`` matches."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="rightsizer-regressions", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="rightsizer-regressions", Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def run_twice(stack: Any, make_input: Any, first_rps: float, second_rps: float) -> list[Any]:
    outputs = []
    for i, rps in enumerate((first_rps, second_rps)):
        stack.scenario.capacity_rps[TYPE] = rps
        outputs.append(output_of(stack.run(make_input(TYPE), name=f"weekly-{i}")))
        time.sleep(1.1)  # run ids are stamped to the second: the second run starts later
    return outputs


def test_a_halved_capacity_publishes_the_diff_on_the_default_bus(stack, payload, make_input,
                                                                 monkeypatch):
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="rightsizer-alerts")["TopicArn"]
    monkeypatch.setenv("RIGHTSIZER_ALERT_TOPIC_ARN", topic)
    sqs, url = alert_queue({"source": [SOURCE], "detail-type": [DETAIL_TYPE]})
    mail = sqs.create_queue(QueueName="mail")["QueueUrl"]
    mail_arn = sqs.get_queue_attributes(QueueUrl=mail, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=mail_arn)

    first, second = run_twice(stack, make_input, 20, 10)

    assert "since_last_run" not in first
    since = second["since_last_run"]
    assert since["previous_run_id"] == first["run_id"] and since["regressed"]
    assert since["alert_problems"] == []
    [event] = received(sqs, url)
    assert event["source"] == SOURCE and event["detail-type"] == DETAIL_TYPE
    detail = event["detail"]
    assert (detail["run_id"], detail["previous_run_id"]) == (second["run_id"], first["run_id"])
    assert detail["report_uri"] == second["report_uri"]
    assert any(r.startswith(f"{TYPE}: capacity fell 50%") for r in detail["regressions"])
    [row] = detail["types"]
    assert (row["old"]["capacity_per_instance"], row["new"]["capacity_per_instance"]) == (20, 10)
    [note] = received(sqs, mail)
    assert "REGRESSION" in json.loads(json.dumps(note))["Message"]
    report = stack.s3.get_object(Bucket=stack.bucket,
                                 Key=f"runs/{second['run_id']}/report.html")["Body"].read()
    assert b"Since last run" in report and b"capacity fell" in report


def test_an_unchanged_run_is_compared_and_publishes_nothing(stack, payload, make_input):
    sqs, url = alert_queue({"source": [SOURCE]})
    first, second = run_twice(stack, make_input, 20, 20)
    assert second["since_last_run"] == {"previous_run_id": first["run_id"], "regressed": False,
                                        "regressions": [], "alert_problems": []}
    assert received(sqs, url) == []


# --- PutEvents as AWS answers it (moto never fails an entry) ------------------------------------


def a_regression() -> Any:
    def record(run_id: str, rps: float) -> RunRecord:
        return RunRecord(run_id=run_id, name="n", started_at="2026-12-01T00:00:00+00:00",
                         uri="s3://b/runs/x/", status="succeeded", min_rps=1, max_rps=10,
                         recommended_type=TYPE, instances_at_max=1, cost_per_hour_at_max=0.2,
                         types=[TypeFigures(instance_type=TYPE, viable=True,
                                            capacity_per_instance=rps, p99_ms=10,
                                            price_per_hour=0.2)])
    return compare(record("n-20261201T000000Z-aa", 20), record("n-20261208T000000Z-bb", 10))


class PartlyFailingEvents:
    """PutEvents answering HTTP 200 with FailedEntryCount, ``failures`` times, then accepting."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        assert len(json.dumps(Entries[0]).encode()) < 256 * 1024
        if self.calls <= self.failures:
            return {"FailedEntryCount": 1, "Entries": [
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


@pytest.mark.parametrize(("failures", "problems"), [(PUT_ATTEMPTS - 1, 0), (PUT_ATTEMPTS, 1)])
def test_a_failed_entry_is_sent_again_and_a_lasting_failure_is_reported(failures, problems):
    events = PartlyFailingEvents(failures)
    found = publish_regression(a_regression(), "s3://b/r.html", "arn:x", events=events, sns=None)
    assert events.calls == min(failures + 1, PUT_ATTEMPTS)
    assert len(found) == problems
    if problems:
        assert "ThrottlingException: Rate exceeded" in found[0]
