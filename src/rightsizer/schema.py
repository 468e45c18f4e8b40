"""The input contract: the JSON that starts a benchmark, locally or as a Step Functions execution.

One pydantic model serves `rightsizer validate`, `rightsizer run`, the validate Lambda and
`rightsizer schema`. Unknown fields are rejected everywhere (``extra="forbid"``), so a typo
fails loudly instead of silently falling back to a default.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

# SageMaker's InvokeEndpoint rejects bodies over 6 MB.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_INSTANCE_TYPES = 20

SAGEMAKER_INSTANCE_TYPE = re.compile(
    r"^ml\.[a-z0-9]+[a-z0-9-]*\.[0-9]*(x?large|medium|small|micro|metal)$"
)
# Local "instance types" are resource profiles: local.<N>cpu = N server workers on N cores.
LOCAL_INSTANCE_TYPE = re.compile(r"^local\.(?P<cpus>[1-9][0-9]*)cpu$")
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<key>.*))?$")
MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9/-]{1,170}$"
)
IMAGE_URI = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[\w.-]+|@sha256:[a-f0-9]{64})$")
AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# What looks meant as an S3 URI (and so must be a well-formed one), in any case.
S3_LIKE = re.compile(r"^s3:|^s3//", re.IGNORECASE)


@functools.cache
def known_instance_types() -> tuple[str, ...]:
    """Every SageMaker type in the bundled price table, any region: for spelling suggestions."""
    text = resources.files("rightsizer").joinpath("data/prices.json").read_text("utf-8")
    regions = json.loads(text).get("regions", {})
    return tuple(sorted({name for table in regions.values() for name in table}))


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice most like ``word`` (difflib), or None when nothing is close enough."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def suggest_instance_type(name: str) -> str | None:
    """A known SageMaker type ``name`` was probably meant as ("c5.xlarge" -> "ml.c5.xlarge")."""
    known = known_instance_types()
    cleaned = name.strip().lower()
    for candidate in (cleaned, f"ml.{cleaned}"):
        if candidate in known and candidate != name:
            return candidate
    return closest(cleaned, known, cutoff=0.85)


# SageMaker's CreateModel limits on a container's Environment (API reference: ContainerDefinition).
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_CHARS = 1024
ENVIRONMENT_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _container_environment(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_ENVIRONMENT_ENTRIES:
        raise ValueError(
            f"{len(value)} variables: SageMaker takes at most {MAX_ENVIRONMENT_ENTRIES}"
        )
    for key, text in value.items():
        if not ENVIRONMENT_KEY.match(key) or len(key) > MAX_ENVIRONMENT_CHARS:
            raise ValueError(
                f"{key[:60]!r}: a variable name is letters, digits and '_', not starting with a "
                f"digit, at most {MAX_ENVIRONMENT_CHARS} characters"
            )
        if len(text) > MAX_ENVIRONMENT_CHARS:
            raise ValueError(
                f"{key}: the value has {len(text)} characters; SageMaker takes at most "
                f"{MAX_ENVIRONMENT_CHARS} (put larger settings in the model data)"
            )
    return value


ContainerEnvironment = Annotated[dict[str, str], AfterValidator(_container_environment)]


# Model kinds served by local endpoint processes (on local profiles only).
LOCAL_MODEL_KINDS = ("local", "synthetic", "generative")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the model to serve ------------------------------------------------------------------------


class LocalModel(StrictModel):
    """A model folder or ``model.tar.gz`` laid out as SageMaker's framework containers take it:
    the script (``SAGEMAKER_PROGRAM``, default ``inference.py``, with model_fn/input_fn/
    predict_fn/output_fn) in ``SAGEMAKER_SUBMIT_DIRECTORY``, ``code/`` or the root, and an
    optional ``code/requirements.txt``."""

    kind: Literal["local"] = "local"
    path: str = Field(
        description="A model folder or a model.tar.gz, relative to the input file, or the "
        "s3:// URI of a model.tar.gz (read with your AWS credentials)."
    )
    environment: ContainerEnvironment = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("s3://"):
            return v
        if not S3_URI.match(v) or not v.lower().endswith((".tar.gz", ".tgz")):
            raise ValueError(
                "an s3:// model must be a model.tar.gz, e.g. s3://my-bucket/models/model.tar.gz")
        return v


class SyntheticModel(StrictModel):
    """An endpoint of known capacity (slots / service time) for tests and benchmarks."""

    kind: Literal["synthetic"] = "synthetic"
    slots: int = Field(4, ge=1, le=1024, description="Requests served at once.")
    service_ms: float = Field(10.0, gt=0, le=60_000)
    service_distribution: Literal["fixed", "exponential", "uniform"] = "fixed"
    service_spread: float = Field(
        0.25, gt=0, le=1,
        description="'uniform' only: service times uniform on service_ms x [1 - spread, "
        "1 + spread] (bounded and variable, with the same mean).",
    )
    queue: int = Field(64, ge=0, le=100_000, description="Waiting requests before 503.")
    failure_rate: float = Field(0.0, ge=0, lt=1, description="Random 500s, at any load.")
    cold_start_seconds: float = Field(0.0, ge=0, le=600)
    cold_start_factor: float = Field(
        5.0, ge=1, le=1000, description="Service time multiplier while cold."
    )


class GenerativeModel(StrictModel):
    """A local text-generation server shaped like a real LLM server (TGI): continuous batching
    of at most ``max_sequences`` sequences, token by token, with real CPU work per decode
    iteration; served by ``rightsizer.serving.generative``."""

    kind: Literal["generative"] = "generative"
    max_sequences: int = Field(
        8, ge=1, le=256, description="Sequences decoded together (the continuous batch)."
    )
    queue: int = Field(64, ge=0, le=100_000, description="Waiting requests before 503.")
    max_new_tokens: int = Field(
        64, ge=1, le=4096, description="Output tokens when the request does not say."
    )
    weights_mb: float = Field(
        128.0, gt=0, le=1024,
        description="Memory each decode iteration reads whatever the batch (a model's weights).",
    )
    kv_kb_per_token: float = Field(
        32.0, gt=0, le=1024,
        description="Memory each sequence reads per token of its context (its KV cache).",
    )


class ModelPackage(StrictModel):
    kind: Literal["model_package"] = "model_package"
    arn: str = Field(description="A SageMaker model package ARN (e.g. from AWS Marketplace).")
    environment: ContainerEnvironment = Field(default_factory=dict)

    @field_validator("arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not MODEL_PACKAGE_ARN.match(v):
            raise ValueError(
                "must look like arn:aws:sagemaker:<region>:<account>:model-package/<name>"
            )
        return v


class ImageModel(StrictModel):
    kind: Literal["image"] = "image"
    image_uri: str = Field(description="ECR image URI of the inference container.")
    model_data_url: str | None = Field(None, description="s3:// URI of model.tar.gz.")
    environment: ContainerEnvironment = Field(default_factory=dict)

    @field_validator("image_uri")
    @classmethod
    def _image(cls, v: str) -> str:
        if not IMAGE_URI.match(v):
            raise ValueError(
                "must be an image URI such as <account>.dkr.ecr.<region>.amazonaws.com/name:tag"
            )
        return v

    @field_validator("model_data_url")
    @classmethod
    def _data(cls, v: str | None) -> str | None:
        if v is not None and not S3_URI.match(v):
            raise ValueError("must be an s3:// URI, e.g. s3://my-bucket/models/model.tar.gz")
        return v


class ExistingModel(StrictModel):
    kind: Literal["existing"] = "existing"
    name: str = Field(description="Name of a SageMaker model that already exists; never deleted.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", v):
            raise ValueError("must be a SageMaker model name: letters, digits and '-', at most 63")
        return v


Model = Annotated[
    LocalModel | SyntheticModel | GenerativeModel | ModelPackage | ImageModel | ExistingModel,
    Field(discriminator="kind"),
]

# --- what to try --------------------------------------------------------------------------------


class InstanceTypeSpec(StrictModel):
    instance_type: str
    count: int = Field(1, ge=1, le=10, description="Instances behind the endpoint while testing.")

    @field_validator("instance_type")
    @classmethod
    def _known_shape(cls, v: str) -> str:
        if SAGEMAKER_INSTANCE_TYPE.match(v) or LOCAL_INSTANCE_TYPE.match(v):
            return v
        suggestion = suggest_instance_type(v)
        hint = f"did you mean {suggestion!r}? Otherwise use" if suggestion else "use"
        raise ValueError(
            f"{v!r} is not an instance type: {hint} a SageMaker hosting type such as "
            "'ml.c5.xlarge', or a local profile 'local.<N>cpu' such as 'local.1cpu'"
        )

    @property
    def is_local(self) -> bool:
        return self.instance_type.startswith("local.")

    @property
    def local_cpus(self) -> int:
        match = LOCAL_INSTANCE_TYPE.match(self.instance_type)
        if not match:
            raise ValueError(f"{self.instance_type} is not a local profile")
        return int(match["cpus"])


def _type_from_name(value: object) -> object:
    return {"instance_type": value} if isinstance(value, str) else value


# Users may write "ml.c5.xlarge" for {"instance_type": "ml.c5.xlarge", "count": 1}.
InstanceTypeEntry = Annotated[
    InstanceTypeSpec,
    BeforeValidator(_type_from_name, json_schema_input_type=str | InstanceTypeSpec),
]


class Payload(StrictModel):
    """A sample request. Give ``path`` (a file, or an s3:// URI on AWS) or an inline ``body``."""

    path: str | None = None
    body: str | None = None
    content_type: str = Field(description="Content-Type sent with the request, e.g. image/png.")
    accept: str | None = Field(None, description="Accept header; defaults to any.")
    weight: float = Field(1.0, gt=0, description="Relative share of requests using this payload.")
    stream: bool = Field(
        False,
        description="Read the response as a stream (InvokeEndpointWithResponseStream on AWS, "
        "the chunked /invocations response locally) and measure time to first token, "
        "inter-token latency and tokens per second. The body must also ask the container to "
        'stream, e.g. TGI\'s "stream": true.',
    )

    @field_validator("path")
    @classmethod
    def _s3_path(cls, v: str | None) -> str | None:
        if v is not None and S3_LIKE.match(v):
            match = S3_URI.match(v)
            if not match or not match["key"]:
                raise ValueError(
                    f"{v!r} is not an S3 object URI: use s3://<bucket>/<key>, "
                    "e.g. s3://my-bucket/payloads/cat.jpg"
                )
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Payload:
        if (self.path is None) == (self.body is None):
            raise ValueError(
                "give exactly one of 'path' (a file or s3:// URI) or 'body' (inline text)"
            )
        if self.body is not None and len(self.body.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError("inline body is over SageMaker's 6 MB invoke limit")
        return self

    @field_validator("content_type")
    @classmethod
    def _mime(cls, v: str) -> str:
        if not re.match(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$", v):
            raise ValueError("must be a MIME type such as application/json or image/png")
        return v


class Traffic(StrictModel):
    min_rps: float = Field(gt=0, description="Lowest expected request rate (requests/second).")
    max_rps: float = Field(gt=0, description="Peak expected request rate (requests/second).")

    @model_validator(mode="after")
    def _ordered(self) -> Traffic:
        if self.min_rps > self.max_rps:
            raise ValueError(
                f"min_rps ({self.min_rps}) is above max_rps ({self.max_rps}): swap them"
            )
        return self


class Objective(StrictModel):
    max_failure_rate: float = Field(0.01, gt=0, lt=1, description="Failures allowed, 0.01 = 1%.")
    latency_percentile: float | None = Field(None, gt=0, lt=100, description="E.g. 99 for p99.")
    max_latency_ms: float | None = Field(None, gt=0)
    ttft_percentile: float | None = Field(
        None, gt=0, lt=100, description="Time-to-first-token percentile, e.g. 90 for p90."
    )
    max_ttft_ms: float | None = Field(None, gt=0, description="Bound on that percentile's TTFT.")
    min_tokens_per_second: float | None = Field(
        None, gt=0, description="Output tokens per second each request must reach (see below)."
    )
    tokens_per_second_percentile: float = Field(
        10, gt=0, lt=100,
        description="The percentile of per-request tokens/s held to min_tokens_per_second: "
        "10 means 90% of requests reach it.",
    )

    @model_validator(mode="after")
    def _latency_pair(self) -> Objective:
        if (self.latency_percentile is None) != (self.max_latency_ms is None):
            raise ValueError(
                "give both latency_percentile and max_latency_ms (e.g. 99 and 250), or neither"
            )
        if (self.ttft_percentile is None) != (self.max_ttft_ms is None):
            raise ValueError(
                "give both ttft_percentile and max_ttft_ms (e.g. 90 and 500), or neither"
            )
        return self

    @property
    def bounds_tokens(self) -> bool:
        """Whether the objective needs streamed token timings to be judged."""
        return self.max_ttft_ms is not None or self.min_tokens_per_second is not None


class LoadSettings(StrictModel):
    method: Literal["search", "legacy"] = Field(
        "search",
        description="'search': open-loop step search (default). 'legacy': the old notebook's "
        "linear user ramp, kept for comparison.",
    )
    start_rps: float | None = Field(
        None,
        gt=0,
        le=1_000_000,
        description="First offered rate; default: half what one sequential client reaches.",
    )
    growth_factor: float = Field(2.0, gt=1.05, le=10)
    step_seconds: float = Field(10.0, ge=2, le=600)
    warmup_seconds: float = Field(2.0, ge=0, le=300, description="Start of each step ignored.")
    max_rps: float = Field(10_000.0, gt=0, description="Upper bound on the offered rate.")
    precision: float = Field(
        0.03, gt=0.001, le=0.5, description="Stop bisecting when failing/passing < 1 + precision."
    )
    max_steps: int = Field(25, ge=1, le=200)
    max_seconds: float = Field(900.0, ge=10, description="Bound on one type's load time.")
    request_timeout_seconds: float = Field(60.0, gt=0, le=600)
    processes: int = Field(1, ge=1, le=64, description="Load-generator processes.")

    @model_validator(mode="after")
    def _coherent(self) -> LoadSettings:
        if self.warmup_seconds >= self.step_seconds:
            raise ValueError(
                f"warmup_seconds ({self.warmup_seconds:g}) must be shorter than step_seconds "
                f"({self.step_seconds:g}): lower warmup_seconds or raise step_seconds"
            )
        if self.start_rps is not None and self.start_rps > self.max_rps:
            raise ValueError(
                f"start_rps ({self.start_rps:g}) is above max_rps ({self.max_rps:g}): "
                "lower start_rps or raise max_rps"
            )
        return self


class EndpointSettings(StrictModel):
    """Production-variant settings for large models (AWS only: CreateEndpointConfig)."""

    volume_size_gb: int | None = Field(
        None, ge=1, le=512,
        description="ML storage volume per instance (VolumeSizeInGB). Not for instance types "
        "with local NVMe storage (e.g. ml.g5, ml.p4d), which SageMaker refuses.",
    )
    model_data_download_timeout_seconds: int | None = Field(
        None, ge=60, le=3600,
        description="Time SageMaker allows to download the model data "
        "(ModelDataDownloadTimeoutInSeconds).",
    )
    container_startup_health_check_timeout_seconds: int | None = Field(
        None, ge=60, le=3600,
        description="Time SageMaker waits for the container's first /ping "
        "(ContainerStartupHealthCheckTimeoutInSeconds).",
    )


class BenchmarkInput(StrictModel):
    """Everything one benchmark needs. The same JSON runs locally and on AWS."""

    name: str = Field(
        "rightsize",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$",
        description="Label used in run ids and resource names.",
    )
    model: Model
    instance_types: list[InstanceTypeEntry] = Field(min_length=1, max_length=MAX_INSTANCE_TYPES)
    payloads: list[Payload] = Field(min_length=1, max_length=20)
    traffic: Traffic
    objective: Objective = Objective()
    load: LoadSettings = LoadSettings()
    endpoint: EndpointSettings = EndpointSettings()
    concurrency: int = Field(1, ge=1, le=10, description="Instance types tested at once.")
    safety_factor: float = Field(
        0.5, gt=0, le=1, description="Share of capacity autoscaling targets (AWS advises 0.5)."
    )
    prices: dict[str, float] = Field(
        default_factory=dict,
        validate_default=True,
        description="USD per instance-hour, overriding the bundled table.",
    )
    region: str = "us-east-1"
    results: str = Field("results", description="Local folder or s3://bucket/prefix for runs/.")
    max_cost_usd: float | None = Field(
        None, gt=0, description="Refuse to start when the worst-case endpoint cost is above this."
    )

    @field_validator("instance_types")
    @classmethod
    def _distinct_types(cls, specs: list[InstanceTypeSpec]) -> list[InstanceTypeSpec]:
        names = [s.instance_type for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}; list each type once")
        if len({s.is_local for s in specs}) > 1:
            raise ValueError("do not mix local profiles and SageMaker types in one run")
        return specs

    @field_validator("instance_types")
    @classmethod
    def _types_match_model(
        cls, specs: list[InstanceTypeSpec], info: ValidationInfo
    ) -> list[InstanceTypeSpec]:
        model = info.data.get("model")
        if model is None:  # the model itself is invalid: reported on its own
            return specs
        local_model = model.kind in LOCAL_MODEL_KINDS
        local_types = specs[0].is_local
        if local_model and not local_types:
            raise ValueError(
                f"a {model.kind} model runs on local profiles only: use instance types "
                "like 'local.1cpu' (or a SageMaker model kind for SageMaker types)"
            )
        if not local_model and local_types:
            raise ValueError(
                "local profiles need model.kind 'local', 'synthetic' or 'generative'; SageMaker "
                "models need "
                "SageMaker instance types such as 'ml.c5.xlarge'"
            )
        return specs

    @field_validator("prices")
    @classmethod
    def _positive_prices(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for key, price in v.items():
            if price <= 0:
                raise ValueError(f"price for {key} must be above 0 USD/hour")
        specs = info.data.get("instance_types") or []
        missing = [s.instance_type for s in specs if s.is_local and s.instance_type not in v]
        if missing:
            example = ", ".join(f'"{name}": 0.05' for name in missing)
            raise ValueError(
                f"local profiles have no public price: add a USD per hour for each of "
                f"{', '.join(missing)}, e.g. \"prices\": {{{example}}}"
            )
        return v

    @field_validator("objective")
    @classmethod
    def _ttft_needs_a_stream(cls, v: Objective, info: ValidationInfo) -> Objective:
        payloads = info.data.get("payloads") or []
        if v.max_ttft_ms is not None and payloads and not any(p.stream for p in payloads):
            raise ValueError(
                "max_ttft_ms bounds the time to first token, which only a streamed response "
                'has: set "stream": true on the payloads (and ask the container to stream in '
                'the body, e.g. TGI\'s "stream": true)'
            )
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not AWS_REGION.match(v):
            raise ValueError("must be an AWS region such as us-east-1")
        return v

    @field_validator("results")
    @classmethod
    def _results(cls, v: str) -> str:
        if S3_LIKE.match(v) and not S3_URI.match(v):
            raise ValueError(
                f"{v!r} is not an S3 URI: give a local folder or s3://<bucket>/<prefix> "
                "(bucket names: lowercase letters, digits, '.' and '-')"
            )
        return v

    @property
    def specs(self) -> list[InstanceTypeSpec]:
        return self.instance_types


def format_errors(error: ValidationError) -> str:
    """One line per problem: ``field.path: what is wrong and what is allowed``.

    Paths are written as in the input JSON (a discriminated union's tag, which pydantic puts
    in the location, is left out); an unknown field gets the closest known name, if any.
    """
    root = _ROOT_MODELS.get(error.title)
    lines = []
    for err in error.errors():
        try:
            lines.append(_format_error(root, err))
        except Exception:  # never hide the user's problem behind a formatting bug
            lines.append(f"{_plain_path(err.get('loc', ()))}: {err.get('msg', 'invalid')}")
    return "\n".join(lines)


# Where a field name can be written bare in a path; other dict keys are quoted: prices["x.y"].
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Error types whose message already says enough, or whose input is too big to echo.
_OBJECT_EXPECTED = frozenset({"model_type", "model_attributes_type", "dict_type"})
_NO_ECHO = _OBJECT_EXPECTED | {
    "missing", "extra_forbidden", "value_error", "assertion_error", "too_long", "too_short",
    "union_tag_invalid", "union_tag_not_found",
}


def _format_error(root: type[BaseModel] | None, err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    where, models = _locate(root, loc)
    kind = err.get("type", "")
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "extra_forbidden" and loc:
        _, parents = _locate(root, loc[:-1])
        known = [name for m in parents for name in m.model_fields]
        guess = closest(str(loc[-1]), known)
        message = (
            f"unknown field: did you mean {guess!r}? (see `rightsizer schema`)"
            if guess
            else "unknown field: remove it or check its spelling (see `rightsizer schema`)"
        )
    elif kind == "missing":
        message = "required field is missing (see `rightsizer schema`)"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        field = str(err.get("ctx", {}).get("discriminator", "'kind'")).strip("'")
        tags = [repr(t) for m in models if (t := _tag(m)) is not None]
        where = f"{where}.{field}" if where != "(input)" else field
        given = err.get("ctx", {}).get("tag")
        head = f"{given!r} is not a known {field}" if given is not None else "missing"
        message = f"{head}: use one of {', '.join(tags)}"
    elif kind in _OBJECT_EXPECTED:
        message = _object_expected(models, loc)
    if kind not in _NO_ECHO and "input" in err:
        message = f"{message} (got {_short(err['input'])})"
    return f"{where}: {message}"


def _object_expected(models: list[type[BaseModel]], loc: tuple[Any, ...]) -> str:
    if loc and any("instance_type" in m.model_fields for m in models):
        return (
            "must be an instance type name such as 'ml.c5.xlarge', "
            'or an object such as {"instance_type": "ml.c5.xlarge", "count": 2}'
        )
    return "must be a JSON object (see `rightsizer schema`)"


def _locate(
    root: type[BaseModel] | None, loc: tuple[Any, ...]
) -> tuple[str, list[type[BaseModel]]]:
    """The path as the user wrote it, and the models that can sit at its end."""
    models: list[type[BaseModel]] = [root] if root is not None else []
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
            continue
        part = str(part)
        owners = [m for m in models if part in m.model_fields]
        tagged = [m for m in models if _tag(m) == part]
        if not owners and tagged:  # a discriminated union's tag: not in the user's JSON
            models = tagged
            continue
        models = [sub for m in owners for sub in _models_in(m.model_fields[part].annotation)]
        where += f".{part}" if _IDENT.fullmatch(part) else f"[{json.dumps(part)}]"
    return where.lstrip(".") or "(input)", models


def _plain_path(loc: Iterable[Any]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return text.lstrip(".") or "(input)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold, through Annotated, unions and lists."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("kind")
    return field.default if field is not None else None


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ROOT_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model for model in StrictModel.__subclasses__()
}
