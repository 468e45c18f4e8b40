"""The template's resources made in moto, the real ASL deployed on them, and what tests read."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3

from .constants import (
    ACCOUNT,
    ASL_PATH,
    BUCKET,
    FUNCTION_DIRS,
    LOADGEN_CONTAINER,
    PREFIX,
    REGION,
)
from .scenario import Scenario

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(text: str, values: dict[str, str]) -> str:
    """DefinitionSubstitutions as CloudFormation applies them: every ``${Name}`` must be known."""
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"no substitution for {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


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
        return str(self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=body
        )["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still RUNNING after {timeout} s")
            time.sleep(0.05)

    def run(self, execution_input: Any, name: str = "test-run") -> dict[str, Any]:
        return self.wait(self.start(execution_input, name))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event of the execution, oldest first (GetExecutionHistory pages)."""
        pages = self.sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution_arn)
        return [event for page in pages for event in page["events"]]

    def count_history_events(self, execution_arn: str) -> int:
        """How many events the execution's history holds (AWS allows 25,000)."""
        return len(self.history(execution_arn))

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
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def read_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


def _placeholder_code() -> bytes:
    """A function package for moto: the code that runs is the real handler (fake_lambda)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _create_functions(role_arn: str) -> dict[str, str]:
    lam = boto3.client("lambda", region_name=REGION)
    return {name: lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn,
                                      Handler="app.handler",
                                      Code={"ZipFile": _placeholder_code()})["FunctionArn"]
            for name in FUNCTION_DIRS}


def _create_network() -> tuple[str, str]:
    """A subnet and a security group, as the template's parameters name them."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as a default VPC
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="loadgen", Description="loadgen", VpcId=vpc)
    return subnet, group["GroupId"]


def _create_loadgen_task() -> tuple[str, str]:
    """The cluster and task definition; moto's ECS wants ``memory`` on the container."""
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
    return cluster_arn, task_definition_arn


def deploy(s3: Any, scenario: Scenario, asl_overrides: dict[str, Any]) -> Stack:
    """Create the template's resources in moto and the state machine from the real ASL, with
    ``asl_overrides`` replacing top-level fields of the definition."""
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    role_arn = iam.create_role(RoleName="test-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    arns = _create_functions(role_arn)
    subnet, group = _create_network()
    cluster_arn, task_definition_arn = _create_loadgen_task()
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
                 state_machine_arn=state_machine_arn, scenario=scenario)
