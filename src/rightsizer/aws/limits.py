"""Step Functions' hard limits, checked for an input before anything is created.

Two limits end a standard execution at once, with no Catch able to run (``States.ALL`` does not
match ``States.DataLimitExceeded``; the janitor is the backstop):

* **256 KiB** for any state's input or output. The biggest states are the one after Validate
  (the plan: one item per type) plus the Map's collected results, and an iteration's state
  (its item, the shared run and model, and the error causes it picks up). ``state_problems``
  bounds both for a plan.
* **25,000 events** in an execution's history. Every poll, retry and loop adds events;
  ``history_events`` counts the worst case for an input on a stack, mirroring
  ``statemachine/rightsize.asl.json`` state by state (tests/aws/test_limits.py checks the
  count against the real interpreter's history and the retry counts against the ASL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_STATE_BYTES = 256 * 1024
MAX_HISTORY_EVENTS = 25_000
# Room an iteration's state needs besides its item, run and model: a Catch's error (ECS puts the
# whole task description in the Cause), DescribeEndpoint's answer, a failed deletion, results.
ITERATION_SLACK_BYTES = 64 * 1024
# An ItemRecord (instance type <= 40 characters, status, the outcome key): well below this.
ITEM_RECORD_BYTES = 400

# --- events, as Step Functions writes them -------------------------------------------------------
ENTER_EXIT = 2  # <Type>StateEntered + <Type>StateExited: Pass, Choice, Wait
TASK_ATTEMPT = 3  # TaskScheduled, TaskStarted, TaskSucceeded|TaskFailed
SYNC_TASK_ATTEMPT = 4  # ... and TaskSubmitted, for runTask.sync
MAP_FIXED = 4  # MapStateEntered, MapStateStarted, MapStateSucceeded, MapStateExited
MAP_PER_ITERATION = 2  # MapIterationStarted, MapIterationSucceeded|Failed
EXECUTION_FIXED = 2  # ExecutionStarted, ExecutionSucceeded|Failed

# Retries (the sum of MaxAttempts of each Task's Retry list), as in the ASL.
RETRIES = {
    "Validate": 3, "CheckLoadGenerator": 6, "Recommend": 3, "CleanUpAfterMapError": 3,
    "CreateModel": 5, "CreateEndpointConfig": 5, "CreateEndpoint": 5,
    "DescribeEndpoint": 2, "SmokeTest": 3, "LoadTest": 6,
    "DeleteEndpoint": 0, "CheckEndpointGone": 0, "DeleteEndpointConfig": 5, "DeleteModel": 5,
    "RecordOutcome": 3,
}
SYNC_TASKS = {"CheckLoadGenerator", "LoadTest"}


def task_events(state: str, retries: int | None = None) -> int:
    """A Task state's events when it is tried ``1 + retries`` times (its maximum by default)."""
    tries = 1 + (RETRIES[state] if retries is None else retries)
    return ENTER_EXIT + tries * (SYNC_TASK_ATTEMPT if state in SYNC_TASKS else TASK_ATTEMPT)


@dataclass(frozen=True)
class IterationPath:
    """One iteration's path through the Map: polls before InService (loops back to the Wait),
    DeleteEndpoint states SageMaker refused (``delete_refusals``; with ``gave_up`` the last
    refusal ended the loop in RecordEndpointLeft, else a later try succeeded; with
    ``checks_failed`` each CheckEndpointGone after a refusal failed too), and retries per Task
    (None: each its maximum)."""

    polls: int
    delete_refusals: int = 0
    gave_up: bool = False
    checks_failed: bool = False
    retries: dict[str, int] | None = None
    create_model: bool = True

    def task(self, state: str) -> int:
        return task_events(state, None if self.retries is None else self.retries.get(state, 0))


def iteration_events(path: IterationPath) -> int:
    """Events of one iteration that creates, polls, tests, and deletes (the longest path)."""
    events = ENTER_EXIT  # NeedModel
    if path.create_model:
        events += path.task("CreateModel")
    events += path.task("CreateEndpointConfig") + ENTER_EXIT + path.task("CreateEndpoint")
    events += ENTER_EXIT  # StartPolling
    # Each poll: WaitForEndpoint, DescribeEndpoint, EndpointReady; CountPoll between polls.
    events += (path.polls + 1) * (2 * ENTER_EXIT + path.task("DescribeEndpoint"))
    events += path.polls * ENTER_EXIT
    events += path.task("SmokeTest") + path.task("LoadTest") + ENTER_EXIT  # LoadTestDone
    events += ENTER_EXIT + path.task("DeleteEndpoint")  # EndpointToDelete
    # Each refusal: CheckEndpointGone (EndpointCheckFailed when it fails) and EndpointStillThere,
    # then WaitToDeleteAgain, CountDeleteTry and DeleteEndpoint again, or, after the last,
    # RecordEndpointLeft.
    refused = path.task("CheckEndpointGone") + ENTER_EXIT * (1 + path.checks_failed)
    again = 2 * ENTER_EXIT + path.task("DeleteEndpoint")
    if path.delete_refusals:
        events += path.delete_refusals * refused
        events += (path.delete_refusals - path.gave_up) * again + path.gave_up * ENTER_EXIT
    events += ENTER_EXIT + path.task("DeleteEndpointConfig")  # EndpointConfigToDelete
    events += ENTER_EXIT  # ModelToDelete
    if path.create_model:
        events += path.task("DeleteModel")
    events += path.task("RecordOutcome") + ENTER_EXIT  # ItemResult
    return events


def execution_events(paths: list[IterationPath], retries: dict[str, int] | None = None) -> int:
    """A whole execution that succeeds: Validate, the check, the Map, Recommend, Done."""

    def task(state: str) -> int:
        return task_events(state, None if retries is None else retries.get(state, 0))

    top = task("Validate") + task("CheckLoadGenerator") + task("Recommend")
    top += 2 * ENTER_EXIT  # AnythingMeasured, Done
    the_map = MAP_FIXED + len(paths) * MAP_PER_ITERATION + sum(map(iteration_events, paths))
    return EXECUTION_FIXED + top + the_map


def worst_case_events(types: int, max_polls: int, *, create_model: bool = True) -> int:
    """Every type polls ``max_polls`` times, is tested, then refused deletion until the loop
    gives up (``max_polls`` + 1 refusals), and every Task exhausts its retries."""
    path = IterationPath(
        polls=max_polls, delete_refusals=max_polls + 1, gave_up=True, checks_failed=True,
        create_model=create_model,
    )
    return execution_events([path] * types)


def history_problem(
    types: int, max_polls: int, poll_seconds: int, *, create_model: bool
) -> str | None:
    """The ``instance_types`` error when the worst case could pass 25,000 events, else None."""
    events = worst_case_events(types, max_polls, create_model=create_model)
    if events <= MAX_HISTORY_EVENTS:
        return None
    fits = max(
        (n for n in range(1, types) if worst_case_events(n, max_polls, create_model=create_model)
         <= MAX_HISTORY_EVENTS),
        default=0,
    )
    fewer_polls = (
        "deploy the stack with a larger PollSeconds or a smaller DeployTimeoutSeconds (fewer "
        "polls)"
    )
    split = (
        f"test at most {fits} types per execution (split the list over several executions), or "
        if fits else ""
    )
    return (
        f"instance_types: {types} types could write up to {events:,} events to the execution's "
        f"history (each type polls its endpoint up to {max_polls} times, every {poll_seconds} s, "
        f"and retries), over Step Functions' limit of {MAX_HISTORY_EVENTS:,}: {split}{fewer_polls}"
    )


def json_bytes(value: Any) -> int:
    """Size as Step Functions measures it: UTF-8 bytes of the JSON text."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def state_problems(plan: dict[str, Any]) -> list[str]:
    """Problems with the plan Validate returns (``ValidateOutput`` as JSON), one line each."""
    items = plan["items"]
    after_map = json_bytes(plan) + len(items) * ITEM_RECORD_BYTES
    biggest_item = max(json_bytes(item) for item in items)
    iteration = biggest_item + json_bytes(plan["run"]) + json_bytes(plan["model"])
    iteration += ITERATION_SLACK_BYTES
    problems = []
    if after_map > MAX_STATE_BYTES:
        problems.append(
            f"instance_types, payloads: the run's plan takes {after_map / 1024:.0f} KiB of "
            f"state, over Step Functions' {MAX_STATE_BYTES // 1024} KiB limit: test fewer "
            "instance types per execution or give fewer payloads"
        )
    if iteration > MAX_STATE_BYTES:
        problems.append(
            f"model.environment, payloads: one type's state can take {iteration / 1024:.0f} KiB, "
            f"over Step Functions' {MAX_STATE_BYTES // 1024} KiB limit: give fewer or shorter "
            "environment variables (put large settings in the model data) or fewer payloads"
        )
    return problems
