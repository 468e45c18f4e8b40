"""Recommend: after the Map, write failed summaries, recommendation.json and report.html.

A regression since the previous run of the same name is published to EventBridge's default bus
and, when the stack has an alert topic (RIGHTSIZER_ALERT_TOPIC_ARN), to SNS.

Returns ``{"status": "succeeded", "output": ...}`` (the execution's output) or
``{"status": "failed", "cause": ...}`` when no type was measured; the state machine turns the
latter into a failed execution (rightsizer.aws.finish).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsizer.aws.events import FinishEvent
from rightsizer.aws.finish import Alerts, finish_run

logger = Logger(service="rightsizer")


@logger.inject_lambda_context
@event_parser(model=FinishEvent)
def handler(event: FinishEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event.run.run_id)
    alerts = Alerts(events=boto3.client("events"), sns=boto3.client("sns"),
                    topic_arn=os.environ.get("RIGHTSIZER_ALERT_TOPIC_ARN", ""))
    result = finish_run(event, s3=boto3.client("s3"), alerts=alerts)
    logger.info(
        "run finished",
        extra={
            "status": result["status"],
            "recommended": result["output"].get("recommended"),
            "failed_types": result["output"]["failed_types"],
            "since_last_run": result["output"].get("since_last_run"),
        },
    )
    return result
