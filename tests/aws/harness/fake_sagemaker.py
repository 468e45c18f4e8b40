"""SageMaker: endpoint life cycles, API errors and the runtime's answers chosen by the Scenario.

What moto 5.2.5 does, and what AWS does instead:

* An endpoint is InService the moment it is created; on AWS it is Creating for minutes and may
  end Failed with a FailureReason. ``Scenario.endpoint_fails`` / ``creating_polls`` choose that.
* Any API call succeeds; on AWS it can be throttled, refused by a quota, and so on.
  ``Scenario.faults`` raises a chosen error code (with its HTTP status) from a chosen operation.
* ``InvokeEndpoint`` answers any endpoint name with a canned XML body, reads the endpoint name
  from the wrong place (it arrives as None) and decodes the body as UTF-8 (a JPEG fails). AWS
  refuses an endpoint that does not exist or is not InService (``ValidationError``), passes the
  bytes through, and answers the container's reply, or a ``ModelError`` (424) carrying the
  container's status and message, or no answer at all within the read timeout.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest

from .constants import ACCOUNT, REGION
from .scenario import Scenario

# The Fault mechanism wraps these backend methods.
SAGEMAKER_OPERATIONS = ("create_model", "create_endpoint_config", "create_endpoint",
                        "describe_endpoint", "delete_endpoint", "delete_endpoint_config",
                        "delete_model")


def _instance_type_of(backend: Any, config_name: str) -> str:
    return str(backend.endpoint_configs[config_name].production_variants[0]["InstanceType"])


def _model_error(status: int, message: str, endpoint: str) -> Exception:
    """The runtime's ModelError as AWS sends it: 424, the container's status and message."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(
        "ModelError", f"Received client error ({status}) from primary with message \"{message}\"."
    )
    error.code = 424
    error.description = json.dumps({
        "__type": "ModelError",
        "message": error.message,
        "OriginalStatusCode": status,
        "OriginalMessage": message,
        "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/"
                        f"{endpoint}",
    })
    return error


def _install_endpoint_states(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    from moto.sagemaker.models import SageMakerModelBackend

    original_create = SageMakerModelBackend.create_endpoint

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str,
                        tags: Any) -> Any:
        endpoint = original_create(self, endpoint_name, endpoint_config_name, tags)
        kind = _instance_type_of(self, endpoint_config_name)
        if kind in scenario.endpoint_fails:
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = scenario.endpoint_fails[kind]
        elif scenario.creating_polls.get(kind):
            endpoint.endpoint_status = "Creating"
        return endpoint

    original_describe = SageMakerModelBackend.describe_endpoint

    def describe_endpoint(self: Any, endpoint_name: str) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        kind = _instance_type_of(self, endpoint.endpoint_config_name) if endpoint else ""
        if endpoint is not None and endpoint.endpoint_status == "Creating":
            seen = scenario.describe_calls.get(endpoint_name, 0) + 1
            scenario.describe_calls[endpoint_name] = seen
            if seen >= scenario.creating_polls.get(kind, 0):
                endpoint.endpoint_status = "InService"
        described = original_describe(self, endpoint_name)
        if kind in scenario.describe_padding:  # an answer too large for a state
            described = {**described, "FailureReason": "x" * scenario.describe_padding[kind]}
        return described

    monkeypatch.setattr(SageMakerModelBackend, "create_endpoint", create_endpoint)
    monkeypatch.setattr(SageMakerModelBackend, "describe_endpoint", describe_endpoint)


def _install_faults(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    """``Scenario.faults``, wrapped around the endpoint-state patches above."""
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import SageMakerModelBackend

    def with_faults(method: str) -> Callable[..., Any]:
        original = getattr(SageMakerModelBackend, method)

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            resource = str(args[0] if args else next(iter(kwargs.values()), ""))
            for fault in scenario.faults:
                if fault.fires(method, resource):
                    error = JsonRESTError(fault.code, fault.message)
                    error.code = fault.status
                    raise error
            return original(self, *args, **kwargs)

        return call

    for name in SAGEMAKER_OPERATIONS:
        monkeypatch.setattr(SageMakerModelBackend, name, with_faults(name))


def _install_runtime(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    from moto.sagemakerruntime.models import SageMakerRuntimeBackend
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    def invoke_endpoint(self: Any, endpoint_name: str,
                        unique_repr: bytes) -> tuple[str, str, str, None]:
        from botocore.exceptions import ReadTimeoutError
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import sagemaker_backends

        scenario.smoke_calls.append(endpoint_name)
        scenario.smoke_bodies.append(base64.b64decode(unique_repr))
        backend = sagemaker_backends[self.account_id][self.region_name]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None or endpoint.endpoint_status != "InService":
            raise ValidationError(
                message=f"Endpoint {endpoint_name} of account {self.account_id} not found."
            )
        kind = _instance_type_of(backend, endpoint.endpoint_config_name)
        if kind in scenario.model_error:
            status, message = scenario.model_error[kind]
            raise _model_error(status, message, endpoint_name)
        if kind in scenario.smoke_timeout:  # what botocore raises past read_timeout
            raise ReadTimeoutError(endpoint_url=f"https://runtime.sagemaker/{endpoint_name}")
        if kind in scenario.smoke_answer:
            body, content_type = scenario.smoke_answer[kind]
            return body, content_type, "AllTraffic", None
        # A classifier answers JSON.
        return ('{"label": "tabby cat", "probability": 0.93}', "application/json", "AllTraffic",
                None)

    def response_invoke(self: Any) -> tuple[int, dict[str, str], str]:
        name = unquote(self.path.split("/")[2])  # /endpoints/<name>/invocations
        body, content_type, variant, _ = self.sagemakerruntime_backend.invoke_endpoint(
            endpoint_name=name, unique_repr=base64.b64encode(self.raw_body or b"")
        )
        headers = {"Content-Type": content_type}
        if variant:
            headers["x-Amzn-Invoked-Production-Variant"] = variant
        return 200, headers, body

    monkeypatch.setattr(SageMakerRuntimeBackend, "invoke_endpoint", invoke_endpoint)
    monkeypatch.setattr(SageMakerRuntimeResponse, "use_raw_body", True)  # keep bytes as bytes
    monkeypatch.setattr(SageMakerRuntimeResponse, "invoke_endpoint", response_invoke)


def install(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    _install_endpoint_states(monkeypatch, scenario)
    _install_faults(monkeypatch, scenario)
    _install_runtime(monkeypatch, scenario)
