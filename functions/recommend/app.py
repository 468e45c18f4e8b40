"""Recommend: after the Map, write failed summaries, recommendation.json and report.html.

Returns ``{"status": "succeeded", "output": ...}`` (the execution's output) or
``{"status": "failed", "cause": ...}`` when no type was measured; the state machine turns the
latter into a failed execution (rightsizer.aws.finish).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsizer.aws.events import FinishEvent
from rightsizer.aws.finish import finish_run

logger = Logger(service="rightsizer")


@logger.inject_lambda_context
@event_parser(model=FinishEvent)
def handler(event: FinishEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event.run.run_id)
    result = finish_run(event, s3=boto3.client("s3"))
    logger.info(
        "run finished",
        extra={
            "status": result["status"],
            "recommended": result["output"].get("recommended"),
            "failed_types": result["output"]["failed_types"],
        },
    )
    return result
