"""Validate: the state machine's first step (logic in rightsizer.aws.validate).

Raises ``InvalidInput`` (the state machine's Catch matches on that name) with one line per
problem, before any SageMaker resource exists.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsizer.aws.events import ValidateEvent
from rightsizer.aws.settings import Settings
from rightsizer.aws.validate import InvalidInput, plan_run

logger = Logger(service="rightsizer")


@logger.inject_lambda_context
@event_parser(model=ValidateEvent)
def handler(event: ValidateEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution=event.execution.arn)
    try:
        plan = plan_run(event, Settings.from_env(), s3=boto3.client("s3"))
    except InvalidInput as exc:
        logger.warning("input rejected", extra={"problems": str(exc).splitlines()})
        raise
    logger.info(
        "run planned",
        extra={
            "run_id": plan["run"]["run_id"],
            "types": [item["instance_type"] for item in plan["items"]],
            "worst_case_cost_usd": plan["run"]["worst_case_cost_usd"],
        },
    )
    return plan
