"""A moto harness that executes the real ``statemachine/rightsize.asl.json`` as AWS would.

Real here: the ASL file (DefinitionSubstitutions applied as CloudFormation does), moto 5.2.5's
Step Functions interpreter, the Lambda handlers under ``functions/`` (run in-process), moto's
SageMaker / S3 / ECS, and the load-generator container's entrypoint logic
(``rightsizer.aws.loadgen_task.main``).

Faked, one module per thing faked, each test-only and as narrow as it can be; every module's
docstring names the moto behaviour it works around and what AWS does instead:

* ``fake_lambda``: Lambda runs the real handlers and reports their exceptions as Lambda does.
* ``fake_ecs_task``: the Fargate task runs the entrypoint in-process; RunTask can be refused or
  answer with ``failures``; a non-zero exit fails ``runTask.sync`` with ``States.TaskFailed``.
* ``parameter_shapes``: ASL <-> botocore parameter shapes for the ECS integration.
* ``error_names``: errors named as Step Functions names them on AWS
  (``SageMaker.SageMakerException``, ``ECS.AmazonECSException``, ``AmazonECS.Unknown``...);
  ``States.ALL`` not matching ``States.Runtime`` / ``States.DataLimitExceeded``.
* ``limits``: the 256 KiB limit on state input, output and task results.
* ``fake_sagemaker``: endpoint life cycles, injected API errors, the runtime's answers.
* ``s3_denial``: PutObject denied for chosen keys or for the fake Fargate task.
* ``retry_clock``: Retry waits recorded in ``Scenario.retry_waits`` instead of slept.
* ``history_pages``: GetExecutionHistory answers in pages, as AWS does.

``install_all`` installs every fake; ``Scenario`` says what each instance type does.
"""

from __future__ import annotations

import pytest

from . import (
    error_names,
    fake_ecs_task,
    fake_lambda,
    fake_sagemaker,
    history_pages,
    limits,
    parameter_shapes,
    retry_clock,
    s3_denial,
)
from .constants import ACCOUNT, ASL_PATH, BUCKET, FUNCTION_DIRS, PREFIX, REGION
from .fake_lambda import call_handler
from .inputs import EXECUTION, PAYLOAD_BYTES, PAYLOAD_KEY, benchmark_input
from .limits import MAX_STATE_BYTES
from .scenario import CapacityFailure, Fault, Scenario
from .stack import Stack, deploy, substitute

__all__ = [
    "ACCOUNT", "ASL_PATH", "BUCKET", "EXECUTION", "FUNCTION_DIRS", "MAX_STATE_BYTES",
    "PAYLOAD_BYTES",
    "PAYLOAD_KEY", "PREFIX", "REGION", "CapacityFailure", "Fault", "Scenario", "Stack",
    "benchmark_input", "call_handler", "deploy", "install_all", "substitute",
]


def install_all(monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """Install every fake (undone when the test ends); return the Scenario they obey."""
    scenario = Scenario()
    fake_lambda.install(monkeypatch, scenario)
    parameter_shapes.install(monkeypatch)
    fake_ecs_task.install(monkeypatch, scenario)
    fake_sagemaker.install(monkeypatch, scenario)
    s3_denial.install(monkeypatch, scenario)
    error_names.install(monkeypatch)
    limits.install(monkeypatch)
    retry_clock.install(monkeypatch, scenario)
    history_pages.install(monkeypatch)
    return scenario
