"""ASL <-> botocore parameter shapes for ``arn:aws:states:::ecs:runTask.sync``.

Step Functions takes an optimised integration's parameters in the API's PascalCase
(``NetworkConfiguration.AwsvpcConfiguration.Subnets``) and answers in PascalCase too. moto 5.2.5's
port turns the conversion off (``StateTaskService._normalise_parameters`` and
``_normalise_response`` are no-ops), so botocore rejects the request. ``install`` converts through
the botocore operation model, on the ECS integration only.

An aws-sdk task's result is JSON on AWS (timestamps are strings); moto 5.2.5 leaves botocore's
``datetime`` objects in the state, which ``States.JsonToString`` then cannot encode. ``install``
turns the result into JSON (ISO 8601 timestamps) as it leaves the integration.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest


def operation_model(service: str, action: str) -> Any:
    """botocore's model of ``service``'s ``action`` (snake_case, as moto names it)."""
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = botocore.session.get_session().get_service_model(service)
    names = {camel_to_snake_case(n): n for n in model.operation_names}
    return model.operation_model(names[action])


def _install_json_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    sdk = aws_sdk.StateTaskServiceAwsSdk
    original = sdk._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        env.stack.append(json.loads(to_json_str(env.stack.pop())))

    monkeypatch.setattr(sdk, "_eval_service_task", eval_service_task)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_json_results(monkeypatch)
    _install_ecs_shapes(monkeypatch)


def _install_ecs_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_service,
    )

    def normalise_parameters(self: Any, parameters: dict[str, Any],
                             boto_service_name: str | None = None,
                             service_action_name: str | None = None) -> None:
        op = operation_model(self._get_boto_service_name(boto_service_name),
                             self._get_boto_service_action(service_action_name))
        self._to_boto_request(parameters, op.input_shape)

    def normalise_response(self: Any, response: dict[str, Any],
                           boto_service_name: str | None = None,
                           service_action_name: str | None = None) -> None:
        op = operation_model(self._get_boto_service_name(boto_service_name),
                             self._get_boto_service_action(service_action_name))
        self._from_boto_response(response, op.output_shape)

    ecs = ecs_service.StateTaskServiceEcs
    monkeypatch.setattr(ecs, "_normalise_parameters", normalise_parameters)
    monkeypatch.setattr(ecs, "_normalise_response", normalise_response)
