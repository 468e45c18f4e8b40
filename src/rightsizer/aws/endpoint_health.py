"""Is the SageMaker endpoint under load still serving? The engine's ``target_health`` on AWS.

The engine asks after the warm-up and after every step. SageMaker's own view decides:
``DescribeEndpoint``'s status. An endpoint that went Failed, OutOfService or Deleting, or that
no longer exists, ends the load test with that reason. Every other status (InService, and
Updating/SystemUpdating, during which the old variant keeps serving) lets it go on.

A failing ``DescribeEndpoint`` call (throttling, a missing permission, a network blip) says
nothing about the endpoint, so it never stops the test; each distinct error is logged once.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rightsizer.aws.errors import sagemaker_not_found

log = logging.getLogger("rightsizer.endpoint_health")

STOPPING_STATUSES = frozenset({"Failed", "OutOfService", "Deleting"})
# Bounded: the search waits for this call between steps.
DESCRIBE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=10
)


def sagemaker_client(region: str) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region, config=DESCRIBE_CONFIG)


def reason_for(endpoint_name: str, described: dict[str, Any]) -> str | None:
    """Why the load test must stop, from a DescribeEndpoint answer, or None."""
    status = str(described.get("EndpointStatus", ""))
    if status not in STOPPING_STATUSES:
        return None
    reason = f"SageMaker reports endpoint {endpoint_name} as {status}"
    failure = described.get("FailureReason")
    return f"{reason}: {failure}" if failure else reason


class EndpointHealth:
    """A ``target_health`` callable for one endpoint: a reason to stop, or None."""

    def __init__(self, endpoint_name: str, sagemaker: Any) -> None:
        self.endpoint_name = endpoint_name
        self._sagemaker = sagemaker
        self._logged: set[str] = set()

    def __call__(self) -> str | None:
        try:
            described = self._sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        except ClientError as exc:
            if sagemaker_not_found(exc):
                return f"SageMaker reports endpoint {self.endpoint_name} no longer exists"
            self._log_once(exc)
            return None
        except BotoCoreError as exc:
            self._log_once(exc)
            return None
        return reason_for(self.endpoint_name, described)

    def _log_once(self, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"
        if text not in self._logged:
            self._logged.add(text)
            log.warning(
                "could not check endpoint %s (%s); the load test goes on", self.endpoint_name, text
            )
