"""Error names and matching as Step Functions reports them on AWS.

moto 5.2.5 gets four things wrong; each ``_install_*`` below fixes one:

* aws-sdk integrations (``arn:aws:states:::aws-sdk:<service>:<action>``): moto names every
  error ``<service>.<service>Exception`` in lower case (``sagemaker.sagemakerException``). AWS
  names an error whose code the service's API model declares ``<Service>.<Code>`` plus
  ``Exception`` unless the code already ends so (``SageMaker.ResourceLimitExceededException``,
  ``SageMaker.ConflictException``), and every other error (throttling, validation, 5xx) by the
  SDK's base class, ``<Service>.<Service>Exception`` (``SageMaker.SageMakerException``), the
  service's message only in the Cause: ``<message> (Service: SageMaker, Status Code: 400,
  Request ID: <id>)``. The declared codes are botocore's ``error_shapes`` for the service.
* ``arn:aws:states:::ecs:runTask.sync``: moto reports an API error as ``States.Runtime`` and
  crashes on a RunTask answer that holds ``failures`` and no task. AWS reports the first as
  ``ECS.AmazonECSException`` (the SDK's class for every ECS API error) and the second as
  ``AmazonECS.Unknown``, the answer's failures in the Cause.
* ``States.ALL`` in a Retry or Catch matches every error in moto. On AWS it does not match
  ``States.Runtime`` or ``States.DataLimitExceeded``: those fail the execution at once.
* An iteration that fails with a ``States.*`` error loses it in moto: the Map reports
  ``States.Runtime`` with the Cause "Custom Error Names MUST NOT begin with the prefix
  'States.'". On AWS the Map fails with the iteration's own error and Cause.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

# Errors that States.ALL does not match on AWS (docs: error handling, "States.ALL").
NOT_MATCHED_BY_STATES_ALL = frozenset({"States.Runtime", "States.DataLimitExceeded"})


@cache
def sdk_service_name(service: str) -> str:
    """The AWS SDK for Java 2's name for a botocore service: SageMaker, S3, Ec2, DynamoDb."""
    service_id = botocore.session.get_session().get_service_model(service).service_id
    words = [re.sub(r"[A-Z]{2,}(?![a-z])", lambda m: m[0][0] + m[0][1:].lower(), word)
             for word in str(service_id).split()]
    return "".join(words)


@cache
def modelled_error_codes(service: str) -> frozenset[str]:
    """The error codes ``service``'s API model declares (botocore's ``error_shapes``)."""
    model = botocore.session.get_session().get_service_model(service)
    return frozenset(shape.metadata.get("error", {}).get("code", shape.name)
                     for shape in model.error_shapes)


def aws_sdk_error_name(service: str, code: str) -> str:
    """What an aws-sdk task reports for error ``code`` from botocore service ``service``."""
    name = sdk_service_name(service)
    if code not in modelled_error_codes(service):
        return f"{name}.{name}Exception"
    return f"{name}.{code}" + ("" if code.endswith("Exception") else "Exception")


def aws_sdk_cause(service: str, error: ClientError) -> str:
    """The Cause AWS gives: the message, then service, status and request id."""
    metadata = error.response.get("ResponseMetadata", {})
    details = [f"Service: {sdk_service_name(service)}",
               f"Status Code: {metadata.get('HTTPStatusCode', 400)}",
               f"Request ID: {metadata.get('RequestId', '')}"]
    if "HostId" in metadata:
        details.append(f"Extended Request ID: {metadata['HostId']}")
    return f"{error.response['Error'].get('Message', '')} ({', '.join(details)})"


class RunTaskFailures(Exception):
    """RunTask answered with ``failures`` and no task (raised where moto would crash)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(json.dumps(answer, default=str))
        self.answer = answer


def _task_failed(env: Any, error: str, cause: str, resource: str, resource_type: str) -> Any:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    return FailureEvent(
        env=env, error_name=CustomErrorName(error_name=error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error=error, cause=cause, resource=resource, resourceType=resource_type)),
    )


def _install_aws_sdk_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    sdk = aws_sdk.StateTaskServiceAwsSdk
    original = sdk._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        service = self._get_boto_service_name()
        return _task_failed(env, aws_sdk_error_name(service, ex.response["Error"]["Code"]),
                            aws_sdk_cause(service, ex), self._get_sfn_resource(),
                            self._get_sfn_resource_type())

    monkeypatch.setattr(sdk, "_from_error", from_error)


def _install_ecs_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_service,
    )
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    ecs = ecs_service.StateTaskServiceEcs
    original_eval = ecs._eval_service_task
    original_from_error = ecs._from_error

    def eval_service_task(self: Any, env: Any, resource_runtime_part: Any,
                          normalised_parameters: dict[str, Any], state_credentials: Any) -> None:
        """moto's, except that an answer without a task fails the state instead of crashing."""
        if self._get_boto_service_action() != "run_task":
            original_eval(self, env, resource_runtime_part, normalised_parameters,
                          state_credentials)
            return
        client = boto_client_for(region=resource_runtime_part.region, service="ecs",
                                 state_credentials=state_credentials)
        answer = client.run_task(**normalised_parameters)
        answer.pop("ResponseMetadata", None)
        self._normalise_response(response=answer, service_action_name="run_task")
        if not answer["Tasks"]:
            raise RunTaskFailures(answer)
        task = answer["Tasks"][0]
        # The state's result is the task's description, not RunTask's answer.
        described = client.describe_tasks(cluster=task["ClusterArn"], tasks=[task["TaskArn"]])
        described.pop("ResponseMetadata", None)
        self._normalise_response(response=described, service_action_name="describe_tasks")
        env.stack.append(described)

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, RunTaskFailures):
            return _task_failed(env, "AmazonECS.Unknown", str(ex), "runTask.sync", "ecs")
        if not isinstance(ex, ClientError):
            return original_from_error(self, env, ex)
        error = ex.response["Error"]
        metadata = ex.response.get("ResponseMetadata", {})
        cause = (f"{error.get('Message', '')} (Service: AmazonECS; Status Code: "
                 f"{metadata.get('HTTPStatusCode', 400)}; Error Code: {error['Code']}; "
                 f"Request ID: {metadata.get('RequestId', '')}; Proxy: null)")
        return _task_failed(env, "ECS.AmazonECSException", cause, "runTask.sync", "ecs")

    monkeypatch.setattr(ecs, "_eval_service_task", eval_service_task)
    monkeypatch.setattr(ecs, "_from_error", from_error)


def _install_states_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl

    decl = error_equals_decl.ErrorEqualsDecl
    original = decl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if (decl._STATE_ALL_ERROR in self.error_names
                and error_name.error_name in NOT_MATCHED_BY_STATES_ALL):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    monkeypatch.setattr(decl, "_eval_body", eval_body)


def _install_iteration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        ILLEGAL_CUSTOM_ERROR_PREFIX,
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        iteration_worker,
    )

    def error_name_of(error_name: str | None) -> Any:
        if error_name is not None and error_name.startswith(ILLEGAL_CUSTOM_ERROR_PREFIX):
            return StatesErrorName.from_name(error_name)
        return CustomErrorName(error_name=error_name)

    monkeypatch.setattr(iteration_worker, "CustomErrorName", error_name_of)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_aws_sdk_names(monkeypatch)
    _install_ecs_names(monkeypatch)
    _install_states_all(monkeypatch)
    _install_iteration_errors(monkeypatch)
