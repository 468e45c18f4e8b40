"""Smoke test: invoke a fresh endpoint with every sample payload (rightsizer.aws.smoke).

Raises ``SmokeTestFailed`` with the endpoint's own error text; the state machine then deletes
the endpoint and records the item as failed at stage ``smoke_test``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsizer.aws.events import SmokeTestEvent
from rightsizer.aws.smoke import SmokeTestFailed, payload_client, run_smoke_test, runtime_client

logger = Logger(service="rightsizer")


@logger.inject_lambda_context
@event_parser(model=SmokeTestEvent)
def handler(event: SmokeTestEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event.run.run_id, instance_type=event.item.instance_type)
    try:
        result = run_smoke_test(
            event,
            runtime=runtime_client(event.run.region),
            s3=payload_client(),
            seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
    except SmokeTestFailed as exc:
        logger.warning("smoke test failed", extra={"reason": str(exc)})
        raise
    logger.info("smoke test passed", extra=result)
    return result
