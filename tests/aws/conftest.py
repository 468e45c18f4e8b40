"""A moto harness that executes the real ``statemachine/rightsize.asl.json``.

What is real here: the ASL file (with its DefinitionSubstitutions applied the way CloudFormation
does), moto's Step Functions interpreter, the Lambda handlers under ``functions/`` (run in-process
with their real code), moto's SageMaker / S3 / ECS, and the load-generator container's entrypoint
logic (``rightsizer.aws.loadgen_task.main``).

What is simulated, and how (each patch is test-only and as narrow as it can be):

* Lambda: moto's "simple" backend echoes payloads instead of running code; ``invoke`` is patched
  to call our handlers and to report exceptions the way Lambda does
  (``x-amz-function-error`` + ``{"errorType", "errorMessage"}``).
* ECS: moto's Step Functions port skips the conversion between ASL's PascalCase parameters and
  botocore's shapes for ``ecs:runTask``; ``_normalise_parameters``/``_normalise_response`` are
  patched on the ECS integration only, converting through the botocore operation model.
* The Fargate task: no container runs. When moto's ECS starts our task, the harness runs the
  container's entrypoint in-process with the task's environment overrides, with the load engine
  (``find_max_rate``) replaced by a fake that returns a made-up capacity per instance type and
  writes a Locust-like CSV. The real engine is tested elsewhere. A non-zero exit code is reported
  by failing the ``runTask.sync`` state with ``States.TaskFailed`` and the task description as
  the cause, which is what Step Functions does on AWS.
* SageMaker: endpoints are InService at once in moto. The harness can make chosen instance types
  go to ``Failed`` (with a FailureReason), stay ``Creating`` for some polls, or answer the smoke
  test with a ``ModelError``; moto's runtime otherwise answers any endpoint name, so the harness
  makes it refuse names that do not exist (as SageMaker does). ``Scenario.faults`` makes any
  SageMaker call of a chosen type raise a chosen error code; the smoke test can time out or get
  a chosen body and content type; ``RunTask`` can be refused.
* Errors: moto's names for aws-sdk and ECS errors are renamed to the form AWS documents
  (``SageMaker.ThrottlingException``, ``ECS.AmazonECSException``) so Retry/Catch match as on AWS.
  Retry waits are recorded in ``Scenario.retry_waits`` instead of slept.
* S3: PutObject can be denied for chosen keys, or for the fake Fargate task only.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "rightsize.asl.json"
FUNCTIONS = ROOT / "functions"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "rightsizer"
BUCKET = "rightsizer-results-test"
LOADGEN_CONTAINER = "loadgen"
FUNCTION_DIRS = {f"{PREFIX}-validate": "validate", f"{PREFIX}-smoke-test": "smoke_test",
                 f"{PREFIX}-recommend": "recommend", f"{PREFIX}-janitor": "janitor"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(text: str, values: dict[str, str]) -> str:
    """DefinitionSubstitutions as CloudFormation applies them: every ``${Name}`` must be known."""
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"no substitution for {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


# --- the Lambda handlers, in-process ------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


_HANDLERS: dict[str, Callable[..., Any]] = {}


def load_handler(directory: str) -> Callable[..., Any]:
    """``functions/<directory>/app.py``'s handler, imported under a unique module name."""
    if directory not in _HANDLERS:
        path = FUNCTIONS / directory / "app.py"
        spec = importlib.util.spec_from_file_location(f"rightsizer_function_{directory}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _HANDLERS[directory] = module.handler
    return _HANDLERS[directory]


def call_handler(directory: str, event: dict[str, Any]) -> Any:
    """Call a handler as Lambda would: JSON in, JSON out."""
    handler = load_handler(directory)
    result = handler(json.loads(json.dumps(event)), FakeLambdaContext(directory))
    return json.loads(json.dumps(result))


@pytest.fixture
def call() -> Callable[[str, dict[str, Any]], Any]:
    """``call("validate", event)``: a handler under functions/, called as Lambda calls it."""
    return call_handler


# --- the environment every test in tests/aws gets -----------------------------------------------


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "RIGHTSIZER_NAME_PREFIX": PREFIX,
        "RIGHTSIZER_RESULTS_BUCKET": BUCKET,
        "RIGHTSIZER_POLL_SECONDS": "0",
        "RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS": "4",
        "RIGHTSIZER_LOADGEN_STARTUP_SECONDS": "600",
        "RIGHTSIZER_MAX_CONCURRENCY": "5",
        "RIGHTSIZER_USE_PRICING_API": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def moto_aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                          "lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def s3(moto_aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


# --- fakes for what cannot run here -------------------------------------------------------------


@dataclass
class Fault:
    """A SageMaker API error injected into moto's backend.

    ``operation`` is the backend method (``create_model``, ``create_endpoint``,
    ``delete_endpoint``...); the fault fires for the resources of ``instance_type`` (their names
    hold its slug), on the first ``times`` calls (every call when None).
    """

    operation: str
    instance_type: str
    code: str
    message: str
    times: int | None = None
    calls: int = 0

    def fires(self, operation: str, name: str) -> bool:
        from rightsizer.aws.naming import slug

        type_slug = slug(self.instance_type.removeprefix("ml."))
        if operation != self.operation or f"-{type_slug}-" not in name:
            return False
        self.calls += 1
        return self.times is None or self.calls <= self.times


SAGEMAKER_OPERATIONS = ("create_model", "create_endpoint_config", "create_endpoint",
                        "describe_endpoint", "delete_endpoint", "delete_endpoint_config",
                        "delete_model")


@dataclass
class Scenario:
    """What each instance type does in a test. Types not listed succeed with 10 rps."""

    capacity_rps: dict[str, float] = field(default_factory=dict)
    endpoint_fails: dict[str, str] = field(default_factory=dict)  # type -> FailureReason
    creating_polls: dict[str, int] = field(default_factory=dict)  # type -> polls before InService
    model_error: dict[str, tuple[int, str]] = field(default_factory=dict)  # type -> (status, msg)
    loadgen_crash: dict[str, str] = field(default_factory=dict)  # type -> exception message
    # When set, the fake task "runs" until release() or 30 s: lets a test abort mid-Map.
    hold_load: threading.Event | None = None
    hold_only: set[str] | None = None  # hold these types' tasks only (None: every type)
    abandon_held: bool = False  # a held task that is released does not run (timed-out tests)
    loadgen_s3_denied: set[str] = field(default_factory=set)  # the task role cannot write
    faults: list[Fault] = field(default_factory=list)
    smoke_answer: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (body, type)
    smoke_timeout: set[str] = field(default_factory=set)  # types whose smoke test times out
    run_task_error: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (code, msg)
    s3_denied: list[str] = field(default_factory=list)  # PutObject denied for keys containing
    # Applied to the validate Lambda's result: lets a test break the plan the Map receives.
    after_validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Filled in by the harness:
    loadgen_runs: list[dict[str, str]] = field(default_factory=list)
    exit_codes: dict[str, int] = field(default_factory=dict)  # task ARN -> exit code
    smoke_calls: list[str] = field(default_factory=list)
    smoke_bodies: list[bytes] = field(default_factory=list)
    describe_calls: dict[str, int] = field(default_factory=dict)
    retry_waits: list[float] = field(default_factory=list)  # Retry intervals the ASL asked for


def fake_find_max_rate(scenario: Scenario) -> Callable[..., Any]:
    """Stands in for ``rightsizer.engine.find_max_rate``: no load, a made-up capacity."""
    from rightsizer.summary import StepResult, TypeSummary

    def find_max_rate(target, payloads, objective, load, out_dir, *, instance_type="",
                      instance_count=1, progress=None):
        if instance_type in scenario.loadgen_crash:
            raise RuntimeError(scenario.loadgen_crash[instance_type])
        assert payloads and payloads[0].body, "the container should have read the payload copy"
        assert target.endpoint_name and target.region == REGION
        capacity = scenario.capacity_rps.get(instance_type, 10.0) * instance_count
        (Path(out_dir) / "step_001_stats.csv").write_text("Type,Name,Request Count\nPOST,x,10\n")
        step = dict(requests=100, failures=0, failure_rate=0.0, p50_ms=20.0, p95_ms=40.0,
                    p99_ms=60.0, passed=True, duration_seconds=10.0)
        return TypeSummary(
            instance_type=instance_type,
            instance_count=instance_count,
            status="succeeded",
            max_sustainable_rps=capacity,
            bottleneck="endpoint",
            steps=[
                StepResult(target_rps=capacity, achieved_rps=capacity, offered_rps=capacity,
                           **step),
                StepResult(**{**step, "passed": False, "failures": 30, "failure_rate": 0.3,
                              "reasons": ["failure rate 30% above 1%"]},
                           target_rps=capacity * 2, achieved_rps=capacity * 1.2,
                           offered_rps=capacity * 2),
            ],
            p50_ms=20.0, p95_ms=40.0, p99_ms=60.0,
        )

    return find_max_rate


def _model_error(status: int, message: str, endpoint: str) -> Exception:
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


# Set while the fake Fargate task runs for a type in Scenario.loadgen_s3_denied: the task's own
# PutObject calls are denied (same thread), the Lambdas' are not, as with a task role missing
# s3:PutObject.
_denied = threading.local()


@pytest.fixture
def patched_services(monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """Install the narrow patches described in the module docstring; return the Scenario."""
    import botocore.session
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemakerruntime.models import SageMakerRuntimeBackend
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_service,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    from rightsizer.aws import loadgen_task

    scenario = Scenario()
    session = botocore.session.get_session()

    # Lambda: run the real handlers.
    def invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
        event = json.loads(body) if body else {}
        try:
            result = call_handler(FUNCTION_DIRS[name], event)
            if FUNCTION_DIRS[name] == "validate" and scenario.after_validate is not None:
                result = scenario.after_validate(result)
        except Exception as exc:  # reported as Lambda reports an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc),
                               "stackTrace": []}).encode()
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    # ECS integration: convert between ASL and botocore shapes (ECS only).
    def operation(service: str, action: str) -> Any:
        model = session.get_service_model(service)
        names = {camel_to_snake_case(n): n for n in model.operation_names}
        return model.operation_model(names[action])

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        op = operation(self._get_boto_service_name(boto_service_name),
                       self._get_boto_service_action(service_action_name))
        self._to_boto_request(parameters, op.input_shape)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        op = operation(self._get_boto_service_name(boto_service_name),
                       self._get_boto_service_action(service_action_name))
        self._from_boto_response(response, op.output_shape)

    ecs_cls = ecs_service.StateTaskServiceEcs
    monkeypatch.setattr(ecs_cls, "_normalise_parameters", normalise_parameters)
    monkeypatch.setattr(ecs_cls, "_normalise_response", normalise_response)

    # The "container": run the entrypoint when the task starts.
    original_run_task = EC2ContainerServiceBackend.run_task

    def run_task(self, cluster_str, task_definition_str, count, overrides, *args, **kwargs):
        kinds = [e["value"] for c in (overrides or {}).get("containerOverrides", [])
                 for e in c.get("environment", []) if e["name"] == "RIGHTSIZER_INSTANCE_TYPE"]
        if kinds and kinds[0] in scenario.run_task_error:  # the task cannot start
            from moto.ecs.exceptions import ECSException

            raise ECSException(*scenario.run_task_error[kinds[0]])
        tasks = original_run_task(self, cluster_str, task_definition_str, count, overrides,
                                  *args, **kwargs)
        env = {"RIGHTSIZER_PROCESSES": "2"}
        for container in (overrides or {}).get("containerOverrides", []):
            assert container["name"] == LOADGEN_CONTAINER
            env.update({e["name"]: e["value"] for e in container.get("environment", [])})
        scenario.loadgen_runs.append(env)
        kind = env.get("RIGHTSIZER_INSTANCE_TYPE", "")
        if scenario.hold_load is not None and (
                scenario.hold_only is None or kind in scenario.hold_only):
            scenario.hold_load.wait(timeout=30)
            if scenario.abandon_held:  # Step Functions gave up on it: end quietly
                raise RuntimeError("task abandoned by the test")
        _denied.active = kind in scenario.loadgen_s3_denied
        try:
            code = loadgen_task.main(env, find_max_rate=fake_find_max_rate(scenario))
        finally:
            _denied.active = False
        for task in tasks:
            scenario.exit_codes[task.task_arn] = code
        return tasks

    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", run_task)

    original_build = ecs_cls._build_sync_resolver

    def build_sync_resolver(self, env, resource_runtime_part, normalised_parameters,
                            state_credentials):
        resolve = original_build(self, env=env, resource_runtime_part=resource_runtime_part,
                                 normalised_parameters=normalised_parameters,
                                 state_credentials=state_credentials)

        def resolver():
            task = resolve()
            if task is None:
                return None
            code = scenario.exit_codes.get(task.get("TaskArn"), 0)
            if code == 0:
                return task
            task = {**task, "StopCode": "EssentialContainerExited",
                    "StoppedReason": "Essential container in task exited",
                    "Containers": [{"Name": LOADGEN_CONTAINER, "ExitCode": code}]}
            raise FailureEventException(FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                    error="States.TaskFailed", cause=json.dumps(task, default=str),
                    resource="runTask.sync", resourceType="ecs")),
            ))

        return resolver

    monkeypatch.setattr(ecs_cls, "_build_sync_resolver", build_sync_resolver)

    # SageMaker: endpoint states and smoke-test answers chosen by the scenario.
    def instance_type_of(backend, config_name: str) -> str:
        return backend.endpoint_configs[config_name].production_variants[0]["InstanceType"]

    original_create_endpoint = SageMakerModelBackend.create_endpoint

    def create_endpoint(self, endpoint_name, endpoint_config_name, tags):
        endpoint = original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        kind = instance_type_of(self, endpoint_config_name)
        if kind in scenario.endpoint_fails:
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = scenario.endpoint_fails[kind]
        elif scenario.creating_polls.get(kind):
            endpoint.endpoint_status = "Creating"
        return endpoint

    monkeypatch.setattr(SageMakerModelBackend, "create_endpoint", create_endpoint)

    original_describe = SageMakerModelBackend.describe_endpoint

    def describe_endpoint(self, endpoint_name):
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is not None and endpoint.endpoint_status == "Creating":
            kind = instance_type_of(self, endpoint.endpoint_config_name)
            seen = scenario.describe_calls.get(endpoint_name, 0) + 1
            scenario.describe_calls[endpoint_name] = seen
            if seen >= scenario.creating_polls.get(kind, 0):
                endpoint.endpoint_status = "InService"
        return original_describe(self, endpoint_name)

    monkeypatch.setattr(SageMakerModelBackend, "describe_endpoint", describe_endpoint)


    def invoke_endpoint(self, endpoint_name, unique_repr):
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
        kind = instance_type_of(backend, endpoint.endpoint_config_name)
        if kind in scenario.model_error:
            status, message = scenario.model_error[kind]
            raise _model_error(status, message, endpoint_name)
        if kind in scenario.smoke_timeout:
            # What botocore raises when the runtime does not answer within read_timeout.
            from botocore.exceptions import ReadTimeoutError

            raise ReadTimeoutError(endpoint_url=f"https://runtime.sagemaker/{endpoint_name}")
        if kind in scenario.smoke_answer:
            body, content_type = scenario.smoke_answer[kind]
            return body, content_type, "AllTraffic", None
        # moto's default answer is XML; a classifier answers JSON.
        return ('{"label": "tabby cat", "probability": 0.93}', "application/json", "AllTraffic",
                None)

    monkeypatch.setattr(SageMakerRuntimeBackend, "invoke_endpoint", invoke_endpoint)

    # moto 5.2.5's InvokeEndpoint handler reads EndpointName from the wrong place (it arrives
    # as None) and decodes the request body as UTF-8 (a JPEG fails). Take the name from the
    # path, /endpoints/<name>/invocations, and keep the body as bytes, as SageMaker does.
    monkeypatch.setattr(SageMakerRuntimeResponse, "use_raw_body", True)

    def response_invoke(self):
        name = unquote(self.path.split("/")[2])
        body, content_type, variant, _ = self.sagemakerruntime_backend.invoke_endpoint(
            endpoint_name=name, unique_repr=base64.b64encode(self.raw_body or b"")
        )
        headers = {"Content-Type": content_type}
        if variant:
            headers["x-Amzn-Invoked-Production-Variant"] = variant
        return 200, headers, body

    monkeypatch.setattr(SageMakerRuntimeResponse, "invoke_endpoint", response_invoke)

    # Injected SageMaker API errors (Scenario.faults), wrapped around the patches above.
    def with_faults(method: str) -> Callable[..., Any]:
        original = getattr(SageMakerModelBackend, method)

        def call(self, *args, **kwargs):
            resource = str(args[0] if args else next(iter(kwargs.values()), ""))
            for fault in scenario.faults:
                if fault.fires(method, resource):
                    from moto.core.exceptions import JsonRESTError

                    raise JsonRESTError(fault.code, fault.message)
            return original(self, *args, **kwargs)

        return call

    for name in SAGEMAKER_OPERATIONS:
        monkeypatch.setattr(SageMakerModelBackend, name, with_faults(name))

    # S3: PutObject denied for chosen keys, as a bucket policy or a missing permission would.
    from moto.s3.exceptions import S3AccessDeniedError
    from moto.s3.models import S3Backend

    original_put_object = S3Backend.put_object

    def put_object(self, bucket_name, key_name, *args, **kwargs):
        if getattr(_denied, "active", False) or any(p in key_name for p in scenario.s3_denied):
            raise S3AccessDeniedError()
        return original_put_object(self, bucket_name, key_name, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", put_object)

    # Error names as Step Functions gives them, so that Retry/Catch match as on AWS. moto's port
    # names an aws-sdk error "sagemaker.sagemakerException" (no entry for SageMaker in its
    # service table, botocore's class name ClientError); AWS names it ServiceName.ErrorCode plus
    # "Exception" (docs: supported-services-awssdk), e.g. SageMaker.ThrottlingException. An
    # error from the optimized ECS integration is ECS.AmazonECSException on AWS, where moto gives
    # States.Runtime.
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    monkeypatch.setitem(aws_sdk._SERVICE_ERROR_NAMES, "sagemaker", "SageMaker")

    def exception_name(service: str, ex: Exception) -> str:
        code = ex.response["Error"]["Code"] if isinstance(ex, ClientError) else type(ex).__name__
        return f"{service}.{code}" + ("" if code.endswith("Exception") else "Exception")

    monkeypatch.setattr(aws_sdk.StateTaskServiceAwsSdk, "_normalise_exception_name",
                        staticmethod(exception_name))

    original_ecs_from_error = ecs_cls._from_error

    def ecs_from_error(self, env, ex):
        if not isinstance(ex, ClientError):
            return original_ecs_from_error(self, env, ex)
        error = "ECS.AmazonECSException"
        cause = (f"{ex.response['Error']['Message']} (Service: AmazonECS; Error Code: "
                 f"{ex.response['Error']['Code']})")
        return FailureEvent(
            env=env, error_name=ErrorName(error_name=error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource="runTask.sync", resourceType="ecs")),
        )

    monkeypatch.setattr(ecs_cls, "_from_error", ecs_from_error)

    # Retry waits: recorded, not slept (the intervals are the ASL's; only the clock is skipped).
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            scenario.retry_waits.append(seconds)

    monkeypatch.setattr(retrier_decl, "time", Clock)
    return scenario


# --- a deployed "stack" in moto -----------------------------------------------------------------


@dataclass
class Stack:
    sfn: Any
    s3: Any
    sagemaker: Any
    state_machine_arn: str
    scenario: Scenario
    bucket: str = BUCKET

    def start(self, execution_input: Any, name: str = "test-run") -> str:
        body = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=body
        )["executionArn"]

    def wait(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still RUNNING after {timeout} s")
            time.sleep(0.05)

    def run(self, execution_input: Any, name: str = "test-run") -> dict[str, Any]:
        return self.wait(self.start(execution_input, name))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)[
            "events"
        ]

    def leftovers(self) -> dict[str, list[str]]:
        """Every SageMaker model, endpoint config and endpoint that still exists."""
        return {
            "models": [m["ModelName"] for m in self.sagemaker.list_models()["Models"]],
            "endpoint_configs": [
                c["EndpointConfigName"]
                for c in self.sagemaker.list_endpoint_configs()["EndpointConfigs"]
            ],
            "endpoints": [e["EndpointName"] for e in self.sagemaker.list_endpoints()["Endpoints"]],
        }

    def keys(self, prefix: str = "runs/") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def read_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def asl_overrides() -> dict[str, Any]:
    """Top-level fields replaced in the definition; a test parametrizes it (e.g. TimeoutSeconds)."""
    return {}


@pytest.fixture
def stack(s3: Any, patched_services: Scenario, asl_overrides: dict[str, Any]) -> Stack:
    """The template's resources, made in moto, and the real ASL with substitutions applied."""
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    role_arn = iam.create_role(RoleName="test-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]

    lam = boto3.client("lambda", region_name=REGION)
    arns = {}
    for name in FUNCTION_DIRS:
        arns[name] = lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler",
            Code={"ZipFile": _zip()},
        )["FunctionArn"]

    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as a default VPC
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="loadgen", Description="loadgen", VpcId=vpc)[
        "GroupId"
    ]

    ecs = boto3.client("ecs", region_name=REGION)
    cluster_arn = ecs.create_cluster(clusterName=f"{PREFIX}-loadgen")["cluster"]["clusterArn"]
    task_definition_arn = ecs.register_task_definition(
        family=f"{PREFIX}-loadgen",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="4096",
        memory="8192",
        containerDefinitions=[{"name": LOADGEN_CONTAINER, "image": "loadgen:test",
                               "memory": 8192, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]

    definition = substitute(ASL_PATH.read_text(), {
        "ValidateFunctionArn": arns[f"{PREFIX}-validate"],
        "SmokeTestFunctionArn": arns[f"{PREFIX}-smoke-test"],
        "RecommendFunctionArn": arns[f"{PREFIX}-recommend"],
        "JanitorFunctionArn": arns[f"{PREFIX}-janitor"],
        "SageMakerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-sagemaker",
        "ClusterArn": cluster_arn,
        "TaskDefinitionArn": task_definition_arn,
        "Subnets": subnet,
        "SecurityGroups": group,
        "AssignPublicIp": "ENABLED",
        "LoadgenContainerName": LOADGEN_CONTAINER,
    })
    if asl_overrides:
        definition = json.dumps({**json.loads(definition), **asl_overrides})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    state_machine_arn = sfn.create_state_machine(
        name=f"{PREFIX}-rightsize", definition=definition, roleArn=role_arn
    )["stateMachineArn"]
    return Stack(sfn=sfn, s3=s3, sagemaker=boto3.client("sagemaker", region_name=REGION),
                 state_machine_arn=state_machine_arn, scenario=patched_services)


PAYLOAD_KEY = "payloads/cat.jpg"
MODEL_PACKAGE = (
    f"arn:aws:sagemaker:{REGION}:865070037744:model-package/"
    "pytorch-ic-resnet50-1-a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
)


def benchmark_input(*types: str, **overrides: Any) -> dict[str, Any]:
    """A valid AWS input: a model package, an image payload in the results bucket."""
    data: dict[str, Any] = {
        "name": "resnet50",
        "model": {"kind": "model_package", "arn": MODEL_PACKAGE},
        "instance_types": list(types) or ["ml.c5.xlarge"],
        "payloads": [{"path": f"s3://{BUCKET}/{PAYLOAD_KEY}", "content_type": "image/jpeg",
                      "accept": "application/json"}],
        "traffic": {"min_rps": 5, "max_rps": 50},
        "concurrency": 2,
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_input() -> Callable[..., dict[str, Any]]:
    return benchmark_input


@pytest.fixture
def payload(s3: Any) -> str:
    s3.put_object(Bucket=BUCKET, Key=PAYLOAD_KEY, Body=b"\xff\xd8\xff\xe0 not really a jpeg")
    return f"s3://{BUCKET}/{PAYLOAD_KEY}"
