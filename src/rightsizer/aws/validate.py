"""The state machine's first step: check the input, resolve prices, plan one Map item per type.

Nothing is created in SageMaker before this returns: a bad input fails the execution here with
one line per problem (``field.path: what is wrong``), the same text ``rightsizer validate`` prints.
On success the run's folder holds ``input.json`` and a copy of every payload, so the smoke test and
the load generator read only the results bucket (their roles need no access to the user's buckets).
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rightsizer import cost
from rightsizer.aws import input_reference, limits
from rightsizer.aws.events import (
    ItemNames,
    LoadgenTask,
    MapItem,
    Poll,
    RunContext,
    ValidateEvent,
    ValidateOutput,
)
from rightsizer.aws.naming import resource_name, resource_tags, run_id_for
from rightsizer.aws.settings import Settings
from rightsizer.payloads import PayloadError, load_payloads
from rightsizer.s3 import S3ReadError
from rightsizer.schema import (
    LOCAL_MODEL_KINDS,
    MODEL_PACKAGE_ARN,
    S3_URI,
    BenchmarkInput,
    ImageModel,
    ModelPackage,
    Payload,
    format_errors,
)
from rightsizer.store import INPUT, S3RunStore, write_json

if TYPE_CHECKING:
    from rightsizer.pricing import PriceSource

log = logging.getLogger(__name__)

# ECS limits one task's overrides to 8192 characters; keep well inside.
MAX_OVERRIDE_CHARS = 7000
# Execution names that stay exact in SageMaker tags (the janitor matches on the ARN).
EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class InvalidInput(ValueError):
    """The execution's input cannot run; the message says which field and why."""


class ResultsNotWritable(RuntimeError):
    """The run's folder cannot be written: a deployment problem, found before anything exists."""


def plan_run(
    event: ValidateEvent,
    settings: Settings,
    *,
    s3: Any,
    price_source: Any = None,
) -> dict[str, Any]:
    """Validate ``event.input`` and return the state machine's plan (``ValidateOutput``)."""
    bench = parse_input(_referenced_input(event.input, settings, s3))
    problems = aws_problems(bench, settings)
    if not EXECUTION_NAME.match(event.execution.name):
        problems.append(
            f"(execution name): {event.execution.name!r}: use letters, digits, '-' and '_' "
            "(it goes into resource names and tags); start the execution again with such a name"
        )
    if problems:
        raise InvalidInput("\n".join(problems))
    region = settings.region
    run_id = run_id_for(bench.name, event.execution.arn, event.execution.start_time)
    results_uri = f"s3://{settings.results_bucket}"
    store = S3RunStore(results_uri, run_id, s3)

    payloads = payloads_on_s3(bench, settings.results_bucket)
    try:
        loaded = load_payloads(payloads, s3_client=s3)
    except PayloadError as exc:
        raise InvalidInput(str(exc)) from None

    concurrency = min(bench.concurrency, settings.max_concurrency)
    prices = _prices(bench.model_copy(update={"region": region}), settings, price_source)
    bounds = cost.aws_bounds(bench, settings)
    estimate = cost.worst_case(bench, prices, bounds)
    problem = (
        cost.cap_problem(bench, estimate)
        or cost.duration_problem(bench, bounds, concurrency)
        or limits.history_problem(
            len(bench.specs), settings.max_polls, settings.poll_seconds,
            create_model=bench.model.kind != "existing",
        )
    )
    if problem:
        raise InvalidInput(problem)

    # Everything checked: now write. input.json is the input as validated (defaults filled in,
    # the stack's region: a report rebuilt from it prices where the run ran).
    payload_refs = []
    try:
        as_run = bench.model_copy(update={"region": region})
        write_json(store, INPUT, as_run.model_dump(mode="json"))
        for index, (spec, body) in enumerate(zip(payloads, loaded, strict=True)):
            uri = store.write_bytes(f"payloads/{index}", body.body, spec.content_type)
            payload_refs.append(spec.model_copy(update={"path": uri, "body": None}))
    except Exception as exc:
        raise ResultsNotWritable(
            f"cannot write the run's files to {store.uri()} ({exc}): nothing was created; "
            "check the bucket policy and the functions' s3:PutObject permission"
        ) from None

    notes = []
    if concurrency < bench.concurrency:
        notes.append(
            f"concurrency {bench.concurrency} capped at {concurrency}, the stack's "
            "MaxConcurrentTypes parameter"
        )
    run = RunContext(
        run_id=run_id,
        bucket=settings.results_bucket,
        results_uri=results_uri,
        run_uri=store.uri(),
        region=region,
        execution_arn=event.execution.arn,
        execution_name=event.execution.name,
        name_prefix=settings.name_prefix,
        concurrency=concurrency,
        worst_case_cost_usd=round(estimate.usd, 2),
        payloads=payload_refs,
        notes=notes,
    )
    create_model, model_request = _model_request(bench)
    items = [_item(bench, spec.instance_type, spec.count, run, payload_refs, settings, create_model)
             for spec in bench.specs]
    plan = ValidateOutput(
        run=run, model=model_request, preflight=_preflight(run, settings), items=items,
        prices=prices,
    ).model_dump(mode="json")
    problems = limits.state_problems(plan)
    if problems:
        raise InvalidInput("\n".join(problems))
    return plan


def _referenced_input(raw: Any, settings: Settings, s3: Any) -> Any:
    """A schedule's large input is a reference to the bucket (``aws.input_reference``)."""
    try:
        return input_reference.resolve(raw, settings.results_bucket, s3)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    except S3ReadError as exc:
        raise InvalidInput(f"{input_reference.REFERENCE_KEY}: {exc}") from None


def parse_input(raw: Any) -> BenchmarkInput:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"(input): not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput("(input): must be a JSON object (see `rightsizer schema`)")
    try:
        return BenchmarkInput.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(format_errors(exc)) from None


def aws_problems(bench: BenchmarkInput, settings: Settings) -> list[str]:
    """What the schema allows but this stack cannot run, one line each, in the schema's style."""
    checks = (_model_problems, _startup_problems, _placement_problems, _payload_problems)
    return [problem for check in checks for problem in check(bench, settings)]


def _model_problems(bench: BenchmarkInput, settings: Settings) -> list[str]:
    model = bench.model
    if model.kind in LOCAL_MODEL_KINDS:
        return [
            f"model.kind: a {model.kind!r} model runs only on this machine (`rightsizer run`); "
            "on AWS use 'model_package', 'image' or 'existing'"
        ]
    if isinstance(model, ModelPackage):
        match = MODEL_PACKAGE_ARN.match(model.arn)
        package_region = model.arn.split(":")[3] if match else ""
        if package_region and package_region != settings.region:
            return [
                f"model.arn: the model package is in {package_region} but this stack runs in "
                f"{settings.region}; SageMaker needs the package's ARN for {settings.region}"
            ]
    if isinstance(model, ImageModel) and model.model_data_url:
        bucket = S3_URI.match(model.model_data_url)
        if bucket and bucket["bucket"] != settings.results_bucket:
            return [
                f"model.model_data_url: the endpoints' role reads model data from "
                f"s3://{settings.results_bucket}/models/ only; copy model.tar.gz there "
                "or deploy with your own SageMakerRoleArn"
            ]
    return []


def _startup_problems(bench: BenchmarkInput, settings: Settings) -> list[str]:
    startup = _startup_seconds(bench)
    if startup <= settings.deploy_timeout_seconds:
        return []
    return [
        "endpoint: model_data_download_timeout_seconds + "
        f"container_startup_health_check_timeout_seconds = {startup} s, longer than this "
        f"stack waits for an endpoint ({settings.deploy_timeout_seconds} s, the "
        "DeployTimeoutSeconds parameter): lower them or deploy the stack with a larger "
        "DeployTimeoutSeconds"
    ]


def _placement_problems(bench: BenchmarkInput, settings: Settings) -> list[str]:
    """A region or a results location other than the stack's own."""
    problems: list[str] = []
    if "region" in bench.model_fields_set and bench.region != settings.region:
        problems.append(
            f"region: this stack runs in {settings.region}; remove 'region' or deploy the "
            f"stack in {bench.region}"
        )
    allowed = {f"s3://{settings.results_bucket}", f"s3://{settings.results_bucket}/"}
    if "results" in bench.model_fields_set and bench.results not in allowed:
        problems.append(
            "results: on AWS results go to the stack's bucket, "
            f"s3://{settings.results_bucket}; remove 'results' from the input"
        )
    return problems


def _payload_problems(bench: BenchmarkInput, settings: Settings) -> list[str]:
    """Payload paths that name a file on the user's machine rather than an S3 object."""
    problems: list[str] = []
    for index, payload in enumerate(bench.payloads):
        path = payload.path
        if path is None or S3_URI.match(path):
            continue
        if path.startswith(("/", "~")) or ".." in path.split("/") or "://" in path:
            name = path.split("/")[-1]
            problems.append(
                f"payloads[{index}].path: {path!r} is a file on your machine; on AWS give an "
                f"s3:// URI, or a key in the results bucket such as 'payloads/{name}' "
                f"(upload it to s3://{settings.results_bucket}/payloads/)"
            )
    return problems


def payloads_on_s3(bench: BenchmarkInput, bucket: str) -> list[Payload]:
    """On AWS a relative payload path is a key in the results bucket.

    So one input file works both ways: locally ``payloads/sample.jpg`` is read beside the input
    file, on AWS from ``s3://<results bucket>/payloads/sample.jpg``.
    """
    return [
        p.model_copy(update={"path": f"s3://{bucket}/{p.path}"})
        if p.path is not None and not S3_URI.match(p.path) else p
        for p in bench.payloads
    ]


class _AnswerOrNone:
    """A price source whose errors (throttling, no permission) fall through to the next one."""

    def __init__(self, source: PriceSource) -> None:
        self.source = source

    def price_per_hour(self, instance_type: str, region: str) -> float | None:
        try:
            return self.source.price_per_hour(instance_type, region)
        except Exception as exc:
            log.warning("price source %s failed for %s in %s (%s); trying the next",
                        type(self.source).__name__, instance_type, region, exc)
            return None


def _prices(bench: BenchmarkInput, settings: Settings, source: Any) -> dict[str, float]:
    from rightsizer import pricing

    if source is None:
        source = (
            pricing.ChainedPrices(
                [_AnswerOrNone(pricing.PricingApiPrices()), pricing.BundledPrices()]
            )
            if settings.use_pricing_api
            else pricing.BundledPrices()
        )
    try:
        return pricing.resolve_prices(bench, source)
    except pricing.PriceNotFoundError as exc:
        raise InvalidInput(f"prices: {exc}") from None


def _model_request(bench: BenchmarkInput) -> tuple[bool, dict[str, Any]]:
    """(create a model?, CreateModel's PrimaryContainer and EnableNetworkIsolation)."""
    model = bench.model
    if model.kind == "existing":
        return False, {}
    if isinstance(model, ModelPackage):
        container: dict[str, Any] = {"ModelPackageName": model.arn}
        isolation = True  # AWS Marketplace model packages require network isolation
    elif isinstance(model, ImageModel):
        container = {"Image": model.image_uri}
        if model.model_data_url:
            container["ModelDataUrl"] = model.model_data_url
        isolation = False
    else:  # rejected earlier by aws_problems
        raise InvalidInput(f"model.kind: {model.kind!r} cannot run on AWS")
    if model.environment:
        container["Environment"] = dict(model.environment)
    return True, {"PrimaryContainer": container, "EnableNetworkIsolation": isolation}


def _item(
    bench: BenchmarkInput,
    instance_type: str,
    count: int,
    run: RunContext,
    payloads: list[Payload],
    settings: Settings,
    create_model: bool,
) -> MapItem:
    name = resource_name(settings.name_prefix, run.execution_name, instance_type)
    model_name = name if create_model else bench.model.name  # type: ignore[union-attr]
    environment = loadgen_environment(
        endpoint_name=name,
        region=run.region,
        instance_type=instance_type,
        instance_count=count,
        results_uri=run.results_uri,
        run_id=run.run_id,
        bench=bench,
        payloads=payloads,
    )
    size = len(json.dumps(environment))
    if size > MAX_OVERRIDE_CHARS:
        raise InvalidInput(
            f"payloads: the load generator's parameters take {size} characters, over ECS's "
            "limit; use fewer payloads"
        )
    return MapItem(
        instance_type=instance_type,
        instance_count=count,
        names=ItemNames(model=name, endpoint_config=name, endpoint=name),
        create_model=create_model,
        model_name=model_name,
        production_variant=production_variant(bench, instance_type, count, model_name),
        tags=resource_tags(settings.name_prefix, run.execution_arn, run.run_id, instance_type),
        poll=Poll(seconds=settings.poll_seconds, max=settings.max_polls),
        loadgen=LoadgenTask(
            environment=environment,
            timeout_seconds=int(bench.load.max_seconds) + settings.loadgen_startup_seconds,
        ),
    )


def production_variant(
    bench: BenchmarkInput, instance_type: str, count: int, model_name: str
) -> dict[str, Any]:
    """CreateEndpointConfig's ProductionVariant; the optional settings only when given."""
    variant: dict[str, Any] = {
        "VariantName": "AllTraffic",
        "ModelName": model_name,
        "InstanceType": instance_type,
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1,
    }
    endpoint = bench.endpoint
    optional = {
        "VolumeSizeInGB": endpoint.volume_size_gb,
        "ModelDataDownloadTimeoutInSeconds": endpoint.model_data_download_timeout_seconds,
        "ContainerStartupHealthCheckTimeoutInSeconds":
            endpoint.container_startup_health_check_timeout_seconds,
    }
    variant.update({key: value for key, value in optional.items() if value is not None})
    return variant


def _startup_seconds(bench: BenchmarkInput) -> int:
    """How long SageMaker may take to start the container, by the input's own settings."""
    endpoint = bench.endpoint
    return (endpoint.model_data_download_timeout_seconds or 0) + (
        endpoint.container_startup_health_check_timeout_seconds or 0
    )


def _preflight(run: RunContext, settings: Settings) -> LoadgenTask:
    """The load generator's check mode (loadgen_task): it needs only where to write."""
    values = {
        "RIGHTSIZER_MODE": "preflight",
        "RIGHTSIZER_REGION": run.region,
        "RIGHTSIZER_RESULTS_URI": run.results_uri,
        "RIGHTSIZER_RUN_ID": run.run_id,
    }
    return LoadgenTask(
        environment=[{"Name": key, "Value": value} for key, value in values.items()],
        timeout_seconds=settings.loadgen_startup_seconds,
    )


def loadgen_environment(
    *,
    endpoint_name: str,
    region: str,
    instance_type: str,
    instance_count: int,
    results_uri: str,
    run_id: str,
    bench: BenchmarkInput,
    payloads: list[Payload],
) -> list[dict[str, str]]:
    """The container's parameters, as ECS ``ContainerOverrides.Environment`` (strings only).

    ``loadgen_task.params_from_env`` reads exactly these names.
    """
    values = {
        "RIGHTSIZER_ENDPOINT_NAME": endpoint_name,
        "RIGHTSIZER_REGION": region,
        "RIGHTSIZER_INSTANCE_TYPE": instance_type,
        "RIGHTSIZER_INSTANCE_COUNT": str(instance_count),
        "RIGHTSIZER_RESULTS_URI": results_uri,
        "RIGHTSIZER_RUN_ID": run_id,
        "RIGHTSIZER_OBJECTIVE": bench.objective.model_dump_json(),
        "RIGHTSIZER_LOAD": bench.load.model_dump_json(),
        "RIGHTSIZER_PAYLOADS": json.dumps(
            [p.model_dump(mode="json", exclude_none=True) for p in payloads]
        ),
    }
    if "processes" in bench.load.model_fields_set:
        # The task definition sets one process per vCPU; a user who raised load.processes (as
        # the bottleneck advice says) gets that many: an override replaces the task's value.
        values["RIGHTSIZER_PROCESSES"] = str(bench.load.processes)
    return [{"Name": key, "Value": value} for key, value in values.items()]
