"""Janitor: delete the SageMaker resources an execution left (rightsizer.aws.janitor).

Triggered by the execution's status change (EventBridge rule) and hourly (sweep). Raises when a
deletion failed, or a resource's tags could not be read, for a reason other than "gone already" or
"not deletable yet", so Lambda retries the invocation.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsizer.aws.events import JanitorEvent
from rightsizer.aws.janitor import clean_up

logger = Logger(service="rightsizer")


class CleanupIncomplete(RuntimeError):
    """Some deletions failed; the message lists them."""


@logger.inject_lambda_context
@event_parser(model=JanitorEvent)
def handler(event: JanitorEvent, context: LambdaContext) -> dict[str, Any]:
    target = event.target
    logger.append_keys(execution=target or "sweep")
    report = clean_up(
        os.environ["RIGHTSIZER_NAME_PREFIX"],
        sagemaker=boto3.client("sagemaker"),
        sfn=boto3.client("stepfunctions"),
        execution_arn=target,
    ).as_dict()
    logger.info("janitor pass", extra=report)
    if report["errors"]:
        raise CleanupIncomplete("; ".join(report["errors"]))
    return report
