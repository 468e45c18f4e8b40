"""ECS: the Fargate load-generator task, run in-process when moto's ECS starts it.

moto 5.2.5's ECS starts no container: ``run_task`` records a task that reaches STOPPED with no
exit code. On AWS the container runs ``loadgen_container``'s entrypoint. ``install`` makes
``run_task`` run that entrypoint (``rightsizer.aws.loadgen_task.main``) in-process with the
task's environment overrides, the load engine replaced by a fake capacity per instance type (the
real engine is tested elsewhere). In the task's preflight mode the checks that need a network or
a worker process (``worker``, ``runtime``) pass, or fail as ``Scenario.preflight_fails`` says;
the scratch folder and the report upload are checked for real. It also lets a test make RunTask
refuse with an API error, or answer with a ``failures`` entry and no task (no Fargate capacity,
a vCPU quota: HTTP 200 on AWS), and reports a non-zero exit code the way ``runTask.sync`` does
on AWS: ``States.TaskFailed`` with the task's description as the Cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import s3_denial
from .constants import ACCOUNT, LOADGEN_CONTAINER, REGION
from .scenario import Scenario


def fake_find_max_rate(scenario: Scenario) -> Callable[..., Any]:
    """Stands in for ``rightsizer.engine.find_max_rate``: no load, a made-up capacity."""
    from rightsizer.summary import StepResult, TypeSummary

    def find_max_rate(target: Any, payloads: Any, objective: Any, load: Any, out_dir: Any, *,
                      instance_type: str = "", instance_count: int = 1, progress: Any = None,
                      should_stop: Any = None, target_health: Any = None) -> TypeSummary:
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


def instance_type_of(overrides: dict[str, Any] | None) -> str:
    """The instance type a load-generator task measures (its RIGHTSIZER_INSTANCE_TYPE)."""
    kinds = [e["value"] for c in (overrides or {}).get("containerOverrides", [])
             for e in c.get("environment", []) if e["name"] == "RIGHTSIZER_INSTANCE_TYPE"]
    return kinds[0] if kinds else ""


def task_environment(overrides: dict[str, Any] | None) -> dict[str, str]:
    """The container's environment: the task definition's, then the overrides."""
    env = {"RIGHTSIZER_PROCESSES": "2"}
    for container in (overrides or {}).get("containerOverrides", []):
        assert container["name"] == LOADGEN_CONTAINER
        env.update({e["name"]: e["value"] for e in container.get("environment", [])})
    return env


def _install_task_runner(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    from moto.ecs.exceptions import ECSException
    from moto.ecs.models import EC2ContainerServiceBackend

    from rightsizer.aws import loadgen_task

    original_run_task = EC2ContainerServiceBackend.run_task

    def run_task(self: Any, cluster_str: str, task_definition_str: str, count: int,
                 overrides: dict[str, Any] | None, *args: Any, **kwargs: Any) -> Any:
        kind = instance_type_of(overrides)
        if kind in scenario.run_task_error:  # the API refuses the request
            raise ECSException(*scenario.run_task_error[kind])
        tasks = original_run_task(self, cluster_str, task_definition_str, count, overrides,
                                  *args, **kwargs)
        env = task_environment(overrides)
        is_preflight = env.get("RIGHTSIZER_MODE") == "preflight"
        (scenario.preflight_runs if is_preflight else scenario.loadgen_runs).append(env)
        # Only load tests are held: the preflight (before the Map) runs through.
        if scenario.hold_load is not None and not is_preflight and (
                scenario.hold_only is None or kind in scenario.hold_only):
            scenario.hold_load.wait(timeout=30)
            if scenario.abandon_held:  # Step Functions gave up on it: end quietly
                raise RuntimeError("task abandoned by the test")
        with s3_denial.for_this_thread(kind in scenario.loadgen_s3_denied):
            code = loadgen_task.main(env, find_max_rate=fake_find_max_rate(scenario))
        for task in tasks:
            scenario.exit_codes[task.task_arn] = code
        return tasks

    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", run_task)


def _install_capacity_failures(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    """RunTask answers 200 with ``failures`` and no task: moto always answers ``failures: []``."""
    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.run_task

    def run_task(self: Any) -> Any:
        failure = scenario.run_task_failures.get(instance_type_of(self._get_param("overrides")))
        if failure is None or not failure.fires():
            return original(self)
        return ActionResult({"tasks": [], "failures": [{
            "arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/unplaced",
            "reason": failure.reason}]})

    monkeypatch.setattr(EC2ContainerServiceResponse, "run_task", run_task)


def _install_exit_codes(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    """A stopped task whose container exited non-zero fails the state: States.TaskFailed, the
    Cause the task's description (moto's resolver returns the task as a success)."""
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

    ecs = ecs_service.StateTaskServiceEcs
    original_build = ecs._build_sync_resolver

    def build_sync_resolver(self: Any, env: Any, resource_runtime_part: Any,
                            normalised_parameters: dict[str, Any],
                            state_credentials: Any) -> Callable[[], Any]:
        resolve = original_build(self, env=env, resource_runtime_part=resource_runtime_part,
                                 normalised_parameters=normalised_parameters,
                                 state_credentials=state_credentials)

        def resolver() -> Any:
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

    monkeypatch.setattr(ecs, "_build_sync_resolver", build_sync_resolver)


def _install_preflight_checks(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    """The preflight checks that need the network or a spawned worker: passed or injected."""
    from rightsizer.aws import preflight

    def check(name: str) -> Callable[[Any], preflight.CheckResult]:
        def result(params: Any) -> preflight.CheckResult:
            if name in scenario.preflight_fails:
                return preflight.CheckResult(name, False, scenario.preflight_fails[name])
            return preflight.CheckResult(name, True, f"{name}: passed (faked by the harness)")

        return result

    monkeypatch.setattr(preflight, "check_worker", check("worker"))
    monkeypatch.setattr(preflight, "check_runtime", check("runtime"))


def install(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    _install_preflight_checks(monkeypatch, scenario)
    _install_task_runner(monkeypatch, scenario)
    _install_capacity_failures(monkeypatch, scenario)
    _install_exit_codes(monkeypatch, scenario)
