"""A regression found at the end of an execution, told to EventBridge and, if set up, SNS.

The event goes to the account's default bus with ``source: rightsizer`` and ``detail-type:
Rightsizer Regression`` (docs/aws.md shows a rule that matches it). Its detail is the comparison
(``rightsizer.history.RunDiff``): the two runs, the regressions, every type's figures.

PutEvents can fail per entry while the call succeeds (``FailedEntryCount``): a failed entry is
sent again, up to ``PUT_ATTEMPTS`` times, and what still failed is returned as a problem. An alert
that cannot be sent never fails the run: its recommendation and report are already written.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rightsizer.aws.errors import describe_error
from rightsizer.history import RunDiff, format_diff

log = logging.getLogger(__name__)

SOURCE = "rightsizer"
DETAIL_TYPE = "Rightsizer Regression"
PUT_ATTEMPTS = 3
# PutEvents takes entries of at most 256 KiB (source, detail-type, detail and resources).
MAX_DETAIL_BYTES = 200 * 1024
MAX_SUBJECT_CHARS = 100  # SNS's limit on an e-mail subject


def regression_detail(diff: RunDiff, report_uri: str) -> dict[str, Any]:
    """The event's detail: the whole comparison, without the per-type rows if they do not fit."""
    detail: dict[str, Any] = {
        "name": diff.new.name,
        "run_id": diff.new.run_id,
        "previous_run_id": diff.old.run_id,
        "report_uri": report_uri,
        **diff.model_dump(mode="json"),
    }
    if len(json.dumps(detail).encode()) > MAX_DETAIL_BYTES:
        detail["types"] = []
        detail["notes"] = [*diff.notes, "per-type figures left out to fit EventBridge's limit"]
    return detail


def publish_regression(
    diff: RunDiff, report_uri: str, execution_arn: str, *, events: Any, sns: Any,
    topic_arn: str = "",
) -> list[str]:
    """Send the regression event (and an SNS message when ``topic_arn`` is set); the problems."""
    detail = regression_detail(diff, report_uri)
    problems = _put_event(detail, execution_arn, events)
    if topic_arn:
        problems += _publish_message(diff, report_uri, topic_arn, sns)
    for problem in problems:
        log.error("regression alert not delivered: %s", problem)
    return problems


def _put_event(detail: dict[str, Any], execution_arn: str, events: Any) -> list[str]:
    entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail),
             "Resources": [execution_arn]}
    failure = "no attempt made"
    for _ in range(PUT_ATTEMPTS):
        try:
            answer = events.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            return [f"EventBridge PutEvents: {_describe(exc)}"]
        if not answer.get("FailedEntryCount"):
            return []
        failed = answer["Entries"][0]
        failure = f"{failed.get('ErrorCode', 'error')}: {failed.get('ErrorMessage', '')}"
    return [f"EventBridge PutEvents refused the event {PUT_ATTEMPTS} times ({failure})"]


def _publish_message(diff: RunDiff, report_uri: str, topic_arn: str, sns: Any) -> list[str]:
    subject = f"rightsizer: {diff.new.name} regressed"[:MAX_SUBJECT_CHARS]
    message = f"{format_diff(diff)}\n\nreport: {report_uri}\n"
    try:
        sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    except (ClientError, BotoCoreError) as exc:
        return [f"SNS Publish to {topic_arn}: {_describe(exc)}"]
    return []


def _describe(exc: ClientError | BotoCoreError) -> str:
    return describe_error(exc) if isinstance(exc, ClientError) else f"{type(exc).__name__}: {exc}"
