"""template.yaml and the ASL: linters, and the rules a later change must not widen silently.

The linters run offline: statelint (the ASL), cfn-lint and ``sam validate --lint`` (the template,
SAM's translator included), checkov (security misconfigurations). ``sam`` and ``checkov`` live in
their own virtual environments (``.venv-sam``, ``.venv-checkov``) because their pinned
dependencies conflict with the project's; ``make test`` creates them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rightsizer.aws.naming import NAME_PREFIX

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "rightsize.asl.json"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
BIN = Path(sys.executable).parent

# Actions AWS does not let a policy scope to a resource: "Resource": "*" is allowed for these only.
NO_RESOURCE_LEVEL = {
    "pricing:GetProducts",
    "sagemaker:ListEndpoints",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListModels",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def run(*cmd: str | Path, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    decoded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return json.loads(json.dumps(decoded, default=str))


# --- linters -------------------------------------------------------------------------------------


def test_statelint_accepts_the_asl():
    # --ignore=URI: the ${...} DefinitionSubstitutions placeholders are not ARNs yet.
    result = run(BIN / "statelint", "--ignore=URI", ASL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_accepts_the_template():
    result = run(BIN / "cfn-lint", "--regions", "us-east-1", "--", TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_accepts_the_template():
    if not SAM.exists():
        pytest.skip("aws-sam-cli is not installed in .venv-sam: run `make test` (it installs it)")
    result = run(SAM, "validate", "--lint", "--region", "us-east-1", "--template", TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_checkov_finds_no_unexplained_failure():
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed in .venv-checkov: run `make test` (it installs it)")
    # --skip-download: no network (checkov would fetch guideline links from its platform).
    result = run(CHECKOV, "--file", TEMPLATE, "--framework", "cloudformation", "--output",
                 "json", "--skip-download", timeout=400)
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}"
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert failed == [], "\n".join(failed)
    # Every skip carries a reason in the template.
    for r in reports:
        for check in r.get("results", {}).get("skipped_checks", []):
            assert check["check_result"].get("suppress_comment"), check["check_id"]


# --- the state machine and the template agree -----------------------------------------------------


def test_every_placeholder_in_the_asl_has_a_substitution(template):
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL.read_text()))
    machine = template["Resources"]["RightsizeStateMachine"]["Properties"]
    assert set(machine["DefinitionSubstitutions"]) == placeholders
    assert machine["DefinitionUri"] == "statemachine/rightsize.asl.json"


def test_retries_are_narrow():
    """No Retry matches every error; Catch may (it records the failure and cleans up)."""
    def states(node: dict[str, Any]):
        for name, state in node["States"].items():
            yield name, state
            if "ItemProcessor" in state:
                yield from states(state["ItemProcessor"])

    definition = json.loads(ASL.read_text())
    for name, state in states(definition):
        for retrier in state.get("Retry", []):
            assert "States.ALL" not in retrier["ErrorEquals"], name
            assert "States.TaskFailed" not in retrier["ErrorEquals"], name


def test_every_failure_path_reaches_cleanup():
    """Each Catch inside the Map leads to the cleanup chain or is part of it."""
    definition = json.loads(ASL.read_text())
    item = definition["States"]["TestEachType"]["ItemProcessor"]["States"]
    cleanup = {"EndpointToDelete", "EndpointConfigToDelete", "ModelToDelete", "RecordOutcome",
               "OutcomeNotRecorded", "CheckEndpointGone", "EndpointCheckFailed"}
    failure_states = {"DeployFailed", "SmokeTestFailed", "LoadTestFailed", "EndpointFailed",
                      "EndpointNotReady"}
    for name, state in item.items():
        for catcher in state.get("Catch", []):
            assert catcher["Next"] in failure_states | cleanup, (name, catcher["Next"])
    for name in failure_states:
        assert item[name]["Next"] == "EndpointToDelete"
    for name, state in item.items():
        if state["Type"] == "Task":  # every call in an iteration: a failure is recorded
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name


def test_failures_after_resources_exist_are_caught_at_the_top_level():
    """An iteration failing outside its Catch (a Wait or Choice state cannot catch) sends the
    Map to the janitor; a failing recommendation says where the results are."""
    top = json.loads(ASL.read_text())["States"]
    assert top["TestEachType"]["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert top["TestEachType"]["Catch"][0]["Next"] == "CleanUpAfterMapError"
    janitor = top["CleanUpAfterMapError"]
    assert janitor["Parameters"]["FunctionName"] == "${JanitorFunctionArn}"
    assert janitor["Parameters"]["Payload"] == {"execution_arn.$": "$$.Execution.Id"}
    assert janitor["Catch"][0]["Next"] == janitor["Next"]  # fails the execution either way
    assert top["Recommend"]["Catch"][0]["ErrorEquals"] == ["States.ALL"]


# --- parameters and safe defaults ---------------------------------------------------------------


def test_parameters_have_defaults_except_what_only_the_user_knows(template):
    parameters = template["Parameters"]
    required = {name for name, p in parameters.items() if "Default" not in p}
    assert required == {"LoadgenImageUri", "VpcId", "Subnets"}
    assert parameters["AlertTopicArn"]["Default"] == ""
    assert NAME_PREFIX.match(parameters["NamePrefix"]["Default"])
    assert parameters["NamePrefix"]["AllowedPattern"] == NAME_PREFIX.pattern


def test_bucket_is_private_encrypted_tls_only_and_expires_runs(template):
    resources = template["Resources"]
    bucket = resources["ResultsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-runs"]["Status"] == "Enabled"
    statement = resources["ResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- least privilege ---------------------------------------------------------------------------


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []) or []:
            if isinstance(policy, dict) and "PolicyDocument" in policy:  # AWS::IAM::Role
                found += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
            elif isinstance(policy, dict) and "Statement" in policy:  # SAM inline statements
                found += [(name, s) for s in policy["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_statement_allows_wildcard_actions(template):
    statements = _statements(template)
    assert len(statements) > 15
    for name, statement in statements:
        assert statement["Effect"] == "Allow", name
        for action in _as_list(statement["Action"]):
            assert "*" not in action, (name, action)


def test_wildcard_resources_only_where_aws_has_no_resource_level_permissions(template):
    for name, statement in _statements(template):
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= NO_RESOURCE_LEVEL, (name, statement)


def test_sagemaker_permissions_are_scoped_to_the_name_prefix(template):
    for name, statement in _statements(template):
        actions = [a for a in _as_list(statement["Action"]) if a.startswith("sagemaker:")]
        if not actions or set(actions) <= NO_RESOURCE_LEVEL:
            continue
        for resource in _as_list(statement["Resource"]):
            text = json.dumps(resource)
            assert "${NamePrefix}-*" in text, (name, actions, resource)
            assert ":sagemaker:${AWS::Region}:${AWS::AccountId}:" in text, (name, resource)


def test_pass_role_names_exact_roles_and_the_service(template):
    passes = [(n, s) for n, s in _statements(template) if "iam:PassRole" in _as_list(s["Action"])]
    assert {s["Condition"]["StringEquals"]["iam:PassedToService"] for _, s in passes} == {
        "sagemaker.amazonaws.com", "ecs-tasks.amazonaws.com"}
    for name, statement in passes:
        for resource in _as_list(statement["Resource"]):
            assert "*" not in json.dumps(resource), (name, resource)


def test_load_generator_may_only_invoke_prefixed_endpoints_and_write_under_runs(template):
    role = template["Resources"]["LoadgenTaskRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {a: s for s in statements for a in _as_list(s["Action"])}
    invoke = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")
    assert set(actions) == {*invoke, "sagemaker:DescribeEndpoint",
                            "s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    for action in (*invoke, "sagemaker:DescribeEndpoint"):
        assert "endpoint/${NamePrefix}-*" in json.dumps(actions[action])
    assert json.dumps(actions["s3:PutObject"]["Resource"]).endswith('/runs/*"}')
    assert actions["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": "runs/*"}}


def _statement_allowing(template: dict[str, Any], role: str, action: str) -> dict[str, Any]:
    properties = template["Resources"][role]["Properties"]
    policies = properties.get("Policies", [])
    statements = [s for p in policies for s in p.get("PolicyDocument", p).get("Statement", [])]
    return next(s for s in statements if action in _as_list(s["Action"]))


def test_endpoints_may_pull_aws_deep_learning_and_marketplace_images(template):
    """DLC and Marketplace images live in AWS-owned accounts' registries (e.g. 763104351884):
    a policy limited to this account's repositories fails every such model at CreateEndpoint."""
    import fnmatch

    statement = _statement_allowing(template, "SageMakerExecutionRole", "ecr:BatchGetImage")
    pattern = statement["Resource"]["Fn::Sub"]
    assert "${AWS::AccountId}" not in pattern
    resolved = pattern.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1")
    dlc = "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-inference"
    assert fnmatch.fnmatch(dlc, resolved)
    assert set(_as_list(statement["Action"])) == {
        "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}


@pytest.mark.parametrize("function", ["ValidateFunction", "SmokeTestFunction"])
def test_functions_that_read_payloads_may_list_so_a_missing_key_says_no_such_key(template,
                                                                               function):
    """Without s3:ListBucket, S3 answers AccessDenied for a key that does not exist."""
    statement = _statement_allowing(template, function, "s3:ListBucket")
    assert "ResultsBucket" in json.dumps(statement["Resource"])


@pytest.mark.parametrize("role", ["SmokeTestFunction", "LoadgenTaskRole"])
def test_streamed_payloads_may_be_invoked_where_they_are_sent(template, role):
    """InvokeEndpointWithResponseStream is its own IAM action: without it a "stream": true
    payload fails with AccessDeniedException after the endpoint is up and billed."""
    statement = _statement_allowing(template, role, "sagemaker:InvokeEndpointWithResponseStream")
    assert "endpoint/${NamePrefix}-*" in json.dumps(statement["Resource"])


def test_state_machine_may_record_outcomes_under_runs_only(template):
    statement = _statement_allowing(template, "RightsizeStateMachine", "s3:PutObject")
    assert statement["Resource"] == {"Fn::Sub": "${ResultsBucket.Arn}/runs/*"}


def test_outputs_give_a_ready_to_paste_start_command(template):
    outputs = template["Outputs"]
    assert {"StateMachineArn", "ResultsBucketName", "StartExecutionCommand"} <= set(outputs)
    command = json.dumps(outputs["StartExecutionCommand"])
    assert "aws stepfunctions start-execution" in command
    assert "examples/aws/resnet50-input.json" in command
    assert (ROOT / "examples" / "aws" / "resnet50-input.json").exists()


def test_samconfig_overrides_name_real_parameters(template):
    import shlex
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    names = {pair.split("=", 1)[0] for pair in shlex.split(deploy["parameter_overrides"])}
    assert names <= set(template["Parameters"])
    assert not names & {"LoadgenImageUri", "VpcId", "Subnets"}  # --guided asks for these


def test_state_machine_may_invoke_the_janitor(template):
    policies = template["Resources"]["RightsizeStateMachine"]["Properties"]["Policies"]
    invoked = [p["LambdaInvokePolicy"]["FunctionName"] for p in policies
               if "LambdaInvokePolicy" in p]
    assert {"Ref": "JanitorFunction"} in invoked


def test_janitor_runs_when_an_execution_ends_and_hourly(template):
    events = template["Resources"]["JanitorFunction"]["Properties"]["Events"]
    pattern = events["ExecutionEnded"]["Properties"]["Pattern"]
    assert pattern["detail"]["status"] == ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "RightsizeStateMachine"}]
    assert json.loads(events["HourlySweep"]["Properties"]["Input"]) == {"sweep": True}


# --- Retry on the error names AWS really sends ----------------------------------------------------

# Lambda's names for a failed Invoke (Step Functions' documented best practice for lambda:invoke).
LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                 "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
# Errors our own handlers raise on purpose (their class names become Step Functions' error names).
HANDLER_ERRORS = {"CleanupIncomplete"}


def _sdk_error_names(service: str, prefix: str, base: str) -> set[str]:
    """What Step Functions can report for ``service``: ``<prefix>.<Code>Exception`` for each
    error its API model declares, else the SDK's base class ``<prefix>.<base>`` (throttling,
    validation and 5xx errors are not declared, so they arrive under the base name)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    declared = {
        f"{prefix}.{shape.name}" + ("" if shape.name.endswith("Exception") else "Exception")
        for shape in model.error_shapes
    }
    return declared | {f"{prefix}.{base}"}


def _tasks(definition: dict[str, Any]):
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            yield name, state
        if "ItemProcessor" in state:
            yield from _tasks(state["ItemProcessor"])


def _real_names(resource: str) -> tuple[set[str], set[str]]:
    """(names the integration can report, names every Retry of it must include)."""
    if resource == "arn:aws:states:::lambda:invoke":
        return LAMBDA_ERRORS | HANDLER_ERRORS, LAMBDA_ERRORS
    if resource.startswith("arn:aws:states:::ecs:runTask"):
        # The optimised ECS integration: API errors under ECS.*, a RunTask answered with a
        # `failures` list (no Fargate capacity, vCPU quota) as AmazonECS.Unknown.
        names = _sdk_error_names("ecs", "ECS", "AmazonECSException") | {"AmazonECS.Unknown"}
        return names, {"ECS.AmazonECSException", "AmazonECS.Unknown"}
    match = re.fullmatch(r"arn:aws:states:::aws-sdk:(\w+):\w+", resource)
    assert match, f"no rule for {resource}: add what Step Functions reports for it"
    service = match[1]
    prefix, base = {"sagemaker": ("SageMaker", "SageMakerException"),
                    "s3": ("S3", "S3Exception")}[service]
    return _sdk_error_names(service, prefix, base), {f"{prefix}.{base}"}


# Retried by their loop instead (Wait, then the call again, up to poll.max times): a Retry would
# also retry "Could not find endpoint", which arrives under the same base name as throttling.
RETRIED_BY_THEIR_LOOP = {"DeleteEndpoint", "CheckEndpointGone"}


def _reaches(states: dict[str, Any], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        todo += [c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])]
        todo += [state[k] for k in ("Next", "Default") if k in state]
    return False


def test_every_aws_call_retries_the_names_aws_really_sends():
    """Step Functions matches ErrorEquals exactly: a name AWS never sends is a Retry that never
    fires. Throttling from SageMaker arrives as SageMaker.SageMakerException (the code is only in
    the Cause), no Fargate capacity as AmazonECS.Unknown."""
    definition = json.loads(ASL.read_text())
    item = definition["States"]["TestEachType"]["ItemProcessor"]["States"]
    for name, state in _tasks(definition):
        possible, required = _real_names(state["Resource"])
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        if name in RETRIED_BY_THEIR_LOOP:
            assert not retried, name
            failure = state["Catch"][0]["Next"]
            assert _reaches(item, failure, "WaitToDeleteAgain"), name
            continue
        assert required <= retried, f"{name} does not retry {sorted(required - retried)}"
        never_sent = retried - possible
        assert not never_sent, f"{name} retries {sorted(never_sent)}, which AWS never sends"


def test_every_retry_is_bounded_with_backoff_and_jitter():
    definition = json.loads(ASL.read_text())
    for name, state in _tasks(definition):
        for retrier in state.get("Retry", []):
            assert 1 <= retrier["MaxAttempts"] <= 5, name
            assert retrier.get("BackoffRate", 2.0) >= 1.5, name
            assert retrier.get("JitterStrategy") == "FULL", name


def test_the_old_never_sent_names_fail_the_rule():
    """The rule above is not vacuous: the names main used to retry are refused."""
    possible, _ = _real_names("arn:aws:states:::aws-sdk:sagemaker:createModel")
    assert "SageMaker.ThrottlingException" not in possible
    assert "SageMaker.ServiceUnavailableException" not in possible
    assert "SageMaker.ResourceLimitExceededException" in possible
    possible, _ = _real_names("arn:aws:states:::ecs:runTask.sync")
    assert "ECS.ThrottlingException" not in possible
