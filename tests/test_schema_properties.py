"""Property-based tests of the input contract (rightsizer.schema).

* Any input built from the strategies below validates, and survives a JSON round trip:
  ``model_dump(mode="json")`` -> JSON -> ``model_validate`` gives an equal model.
* Changing one field of a valid input to an invalid value always fails, and the error names
  that field.
* ``format_errors`` never raises and every line starts with a location; for a JSON object the
  location is a field, never ``(input)``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rightsizer.schema import (
    AWS_REGION,
    LOCAL_INSTANCE_TYPE,
    MAX_INSTANCE_TYPES,
    S3_LIKE,
    SAGEMAKER_INSTANCE_TYPE,
    BenchmarkInput,
    format_errors,
    known_instance_types,
)

PROPERTIES = settings(
    max_examples=120,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIELDS = set(BenchmarkInput.model_fields)
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "us-gov-west-1"]
MIMES = ["application/json", "image/png", "application/x-image", "text/csv; charset=utf-8"]


def floats(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Any:
    return st.floats(
        min_value=low, max_value=high, exclude_min=open_low, exclude_max=open_high,
        allow_nan=False, allow_infinity=False,
    )


positive = floats(0, 1e6, open_low=True)
bucket = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
s3_object = st.builds(
    lambda b, k: f"s3://{b}/{k}", bucket, st.from_regex(r"[A-Za-z0-9_./-]{1,30}", fullmatch=True)
)
account = st.from_regex(r"[0-9]{12}", fullmatch=True)
environment = st.dictionaries(st.from_regex(r"[A-Z_]{1,10}", fullmatch=True), st.text(max_size=10),
                              max_size=3)

# --- valid inputs -------------------------------------------------------------------------------

synthetic_model = st.fixed_dictionaries(
    {"kind": st.just("synthetic")},
    optional={
        "slots": st.integers(1, 1024),
        "service_ms": floats(0, 60_000, open_low=True),
        "service_distribution": st.sampled_from(["fixed", "exponential"]),
        "queue": st.integers(0, 100_000),
        "failure_rate": floats(0, 1, open_high=True),
        "cold_start_seconds": floats(0, 600),
        "cold_start_factor": floats(1, 1000),
    },
)
local_model = st.fixed_dictionaries(
    {"kind": st.just("local"), "path": st.text(min_size=1, max_size=20)},
    optional={"environment": environment},
)
package_model = st.fixed_dictionaries(
    {
        "kind": st.just("model_package"),
        "arn": st.builds(
            lambda region, acct, name: f"arn:aws:sagemaker:{region}:{acct}:model-package/{name}",
            st.sampled_from(REGIONS), account,
            st.from_regex(r"[A-Za-z0-9/-]{1,60}", fullmatch=True),
        ),
    },
    optional={"environment": environment},
)
image_model = st.fixed_dictionaries(
    {
        "kind": st.just("image"),
        "image_uri": st.builds(
            lambda acct, region, repo, tag: f"{acct}.dkr.ecr.{region}.amazonaws.com/{repo}:{tag}",
            account, st.sampled_from(REGIONS),
            st.from_regex(r"[a-z0-9][a-z0-9._/-]{0,20}", fullmatch=True),
            st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True),
        ),
    },
    optional={"model_data_url": s3_object, "environment": environment},
)
existing_model = st.fixed_dictionaries(
    {"kind": st.just("existing"),
     "name": st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,20}", fullmatch=True)}
)
payload = st.one_of(
    st.fixed_dictionaries({"body": st.text(max_size=30)}),
    st.fixed_dictionaries({"path": st.from_regex(r"p/[A-Za-z0-9_./-]{1,20}", fullmatch=True)}),
    st.fixed_dictionaries({"path": s3_object}),
).flatmap(
    lambda source: st.fixed_dictionaries(
        {"content_type": st.sampled_from(MIMES)},
        optional={"accept": st.sampled_from(MIMES), "weight": positive},
    ).map(lambda rest: {**source, **rest})
)


@st.composite
def traffic(draw: st.DrawFn) -> dict[str, float]:
    low, high = sorted([draw(positive), draw(positive)])
    return {"min_rps": low, "max_rps": high}


@st.composite
def objective(draw: st.DrawFn) -> dict[str, float]:
    data: dict[str, float] = {}
    if draw(st.booleans()):
        data["max_failure_rate"] = draw(floats(0, 1, open_low=True, open_high=True))
    if draw(st.booleans()):
        data["latency_percentile"] = draw(floats(0, 100, open_low=True, open_high=True))
        data["max_latency_ms"] = draw(positive)
    return data


@st.composite
def load(draw: st.DrawFn) -> dict[str, Any]:
    step = draw(floats(2, 600))
    max_rps = draw(floats(0, 1e7, open_low=True))
    data: dict[str, Any] = {
        "step_seconds": step,
        "warmup_seconds": draw(floats(0, min(300.0, step), open_high=True)),
        "max_rps": max_rps,
    }
    optional = {
        "method": st.sampled_from(["search", "legacy"]),
        "start_rps": floats(0, min(1e6, max_rps), open_low=True),
        "growth_factor": floats(1.05, 10, open_low=True),
        "precision": floats(0.001, 0.5, open_low=True),
        "max_steps": st.integers(1, 200),
        "max_seconds": floats(10, 1e6),
        "request_timeout_seconds": floats(0, 600, open_low=True),
        "processes": st.integers(1, 64),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            data[key] = draw(strategy)
    return data


def entry(name: str) -> Any:
    return st.one_of(
        st.just(name),
        st.builds(lambda count: {"instance_type": name, "count": count}, st.integers(1, 10)),
    )


@st.composite
def valid_inputs(draw: st.DrawFn) -> dict[str, Any]:
    local = draw(st.booleans())
    if local:
        model = draw(st.one_of(synthetic_model, local_model))
        cpus = draw(st.lists(st.integers(1, 256), min_size=1, max_size=MAX_INSTANCE_TYPES,
                             unique=True))
        names = [f"local.{n}cpu" for n in cpus]
        prices = {name: draw(positive) for name in names}
    else:
        model = draw(st.one_of(package_model, image_model, existing_model))
        names = draw(st.lists(st.sampled_from(known_instance_types()), min_size=1,
                              max_size=MAX_INSTANCE_TYPES, unique=True))
        prices = draw(st.dictionaries(st.sampled_from(names), positive, max_size=3))
    data: dict[str, Any] = {
        "model": model,
        "instance_types": [draw(entry(name)) for name in names],
        "payloads": draw(st.lists(payload, min_size=1, max_size=3)),
        "traffic": draw(traffic()),
    }
    optional = {
        "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}", fullmatch=True),
        "objective": objective(),
        "load": load(),
        "concurrency": st.integers(1, 10),
        "safety_factor": floats(0, 1, open_low=True),
        "prices": st.just(prices),
        "region": st.sampled_from(REGIONS),
        "results": st.one_of(
            st.from_regex(r"[a-z][a-z0-9_/-]{0,20}", fullmatch=True).filter(
                lambda v: not S3_LIKE.match(v)),
            st.builds(lambda b, p: f"s3://{b}/{p}", bucket, st.from_regex(r"[a-z/]{0,10}",
                                                                        fullmatch=True)),
        ),
        "max_cost_usd": positive,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()) or (key == "prices" and local):
            data[key] = draw(strategy)
    return data


@PROPERTIES
@given(valid_inputs())
def test_valid_inputs_validate_and_round_trip_through_json(data: dict[str, Any]) -> None:
    bench = BenchmarkInput.model_validate(data)
    dumped = bench.model_dump(mode="json")
    again = BenchmarkInput.model_validate(json.loads(json.dumps(dumped)))
    assert again == bench
    assert again.model_dump(mode="json") == dumped


# --- one invalid field --------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any], st.DrawFn], tuple[str, str]]
not_a_number = st.one_of(st.text(max_size=5).filter(lambda t: not _numeric(t)),
                         st.lists(st.integers(), max_size=2), st.booleans().map(lambda b: [b]))
not_a_required_number = st.one_of(not_a_number, st.none())


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def set_in(data: dict[str, Any], path: list[Any], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = value


def field(path: list[Any], bad: Any) -> Mutation:
    """Set ``path`` to a value drawn from ``bad``; the error must start with that path."""

    def mutate(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
        set_in(data, path, draw(bad))
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return where, ""

    return mutate


def count_of_first_type(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    first = data["instance_types"][0]
    name = first if isinstance(first, str) else first["instance_type"]
    bad = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=11),
                         not_a_required_number))
    data["instance_types"][0] = {"instance_type": name, "count": bad}
    return "instance_types[0].count", ""


def bad_type_name(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.text(max_size=20).filter(
        lambda t: not SAGEMAKER_INSTANCE_TYPE.match(t) and not LOCAL_INSTANCE_TYPE.match(t)))
    data["instance_types"][-1] = name
    return f"instance_types[{len(data['instance_types']) - 1}].instance_type", ""


def duplicate_type(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    data["instance_types"] = data["instance_types"][: MAX_INSTANCE_TYPES - 1]
    data["instance_types"].append(data["instance_types"][0])
    return "instance_types", "listed more than once"


def min_above_max(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    high = data["traffic"]["max_rps"]
    data["traffic"]["min_rps"] = draw(floats(high, 1e9, open_low=True))
    return "traffic", "min_rps"


def warmup_too_long(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    load = data.setdefault("load", {})
    step = load.get("step_seconds", 10.0)
    load["warmup_seconds"] = draw(floats(step, 300)) if step <= 300 else 300.0
    load["step_seconds"] = min(step, load["warmup_seconds"])
    return "load", "warmup_seconds"


def unknown_field(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    key = draw(st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(
        lambda k: k not in FIELDS))
    data[key] = draw(st.integers())
    return key, "unknown field"


def unknown_traffic_field(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    key = draw(st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(
        lambda k: k not in ("min_rps", "max_rps")))
    data["traffic"][key] = 1
    return f"traffic.{key}", "unknown field"


def unknown_model_kind(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    data["model"]["kind"] = draw(st.text(max_size=12).filter(
        lambda k: k not in ("local", "synthetic", "model_package", "image", "existing")))
    return "model.kind", ""


def missing_local_price(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    data["model"] = {"kind": "synthetic"}
    data["instance_types"] = ["local.1cpu", "local.2cpu"]
    data["prices"] = {"local.1cpu": 0.1}
    return "prices", "local.2cpu"


def sagemaker_type_for_local_model(data: dict[str, Any], draw: st.DrawFn) -> tuple[str, str]:
    data["model"] = draw(st.one_of(synthetic_model, local_model))
    data["instance_types"] = [draw(st.sampled_from(known_instance_types()))]
    return "instance_types", "local profiles only"


MUTATIONS: dict[str, Mutation] = {
    "traffic.min_rps": field(["traffic", "min_rps"],
                             st.one_of(floats(-1e6, 0), not_a_required_number)),
    "traffic.max_rps": field(["traffic", "max_rps"],
                             st.one_of(floats(-1e6, 0), not_a_required_number)),
    "min above max": min_above_max,
    "instance_types empty": field(["instance_types"], st.just([])),
    "instance_types too many": field(["instance_types"], st.just(
        [f"local.{n}cpu" for n in range(1, MAX_INSTANCE_TYPES + 2)])),
    "instance_types not a list": field(["instance_types"], st.one_of(st.text(), st.integers())),
    "count": count_of_first_type,
    "type name": bad_type_name,
    "duplicate": duplicate_type,
    "payloads empty": field(["payloads"], st.just([])),
    "payload content_type": field(["payloads", 0, "content_type"], st.text(max_size=10).filter(
        lambda t: not re.match(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$", t))),
    "payload weight": field(["payloads", 0, "weight"], floats(-10, 0)),
    "max_failure_rate": field(["objective", "max_failure_rate"],
                              st.one_of(floats(-1, 0), floats(1, 10), not_a_required_number)),
    "step_seconds": field(["load", "step_seconds"], st.one_of(floats(-10, 2, open_high=True),
                                                              floats(600, 1e6, open_low=True))),
    "warmup": warmup_too_long,
    "max_seconds": field(["load", "max_seconds"], floats(-10, 10, open_high=True)),
    "processes": field(["load", "processes"], st.one_of(st.integers(max_value=0),
                                                        st.integers(min_value=65))),
    "method": field(["load", "method"], st.text(max_size=8).filter(
        lambda m: m not in ("search", "legacy"))),
    "concurrency": field(["concurrency"], st.one_of(st.integers(max_value=0),
                                                    st.integers(min_value=11))),
    "safety_factor": field(["safety_factor"], st.one_of(floats(-1, 0), floats(1, 10,
                                                                              open_low=True))),
    "region": field(["region"], st.text(max_size=15).filter(lambda r: not AWS_REGION.match(r))),
    "name": field(["name"], st.one_of(st.just(""), st.just("has space"), st.just("x" * 41),
                                      st.just("-lead"))),
    "max_cost_usd": field(["max_cost_usd"], st.one_of(floats(-100, 0), not_a_number)),
    "results": field(["results"], st.sampled_from(["s3://", "s3:/bucket", "S3://Bad_Bucket/x",
                                                   "s3://a"])),
    "unknown field": unknown_field,
    "unknown nested field": unknown_traffic_field,
    "model.kind": unknown_model_kind,
    "missing local price": missing_local_price,
    "local model, SageMaker type": sagemaker_type_for_local_model,
}


@PROPERTIES
@given(valid_inputs(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_one_invalid_field_fails_naming_that_field(
    data: dict[str, Any], mutation: str, draw: st.DataObject
) -> None:
    data = copy.deepcopy(data)
    where, says = MUTATIONS[mutation](data, draw.draw)
    try:
        BenchmarkInput.model_validate(data)
    except ValidationError as exc:
        text = format_errors(exc)
    else:
        raise AssertionError(f"{mutation}: accepted {data}")
    lines = [line for line in text.splitlines() if line.startswith(f"{where}:")]
    assert lines, f"{mutation}: no line for {where}:\n{text}"
    assert any(says in line for line in lines), text


# --- format_errors on anything ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | floats(-1e9, 1e9) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@st.composite
def damaged_inputs(draw: st.DrawFn) -> Any:
    """A valid input with random JSON written over, or added at, a few random places."""
    data = draw(valid_inputs())
    for _ in range(draw(st.integers(1, 3))):
        node: Any = data
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict)
                                       else list(range(len(node)))))
            if not isinstance(node[key], dict | list):
                break
            node = node[key]
        if isinstance(node, dict):
            keys = [*sorted(node), draw(st.text(max_size=8))]
            node[draw(st.sampled_from(keys))] = draw(json_values)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
    return data


@PROPERTIES
@given(st.one_of(json_values, damaged_inputs()))
def test_format_errors_never_fails_and_always_names_a_location(raw: Any) -> None:
    try:
        BenchmarkInput.model_validate(raw)
    except ValidationError as exc:
        text = format_errors(exc)
    else:
        return
    assert text
    for line in text.splitlines():
        where, sep, message = line.partition(": ")
        assert where and sep and message.strip(), line
        if isinstance(raw, dict):
            assert where != "(input)", line  # an object's problems are always some field's
        else:
            assert where == "(input)" and "JSON object" in message, line


# --- docs/input.md's field tables are `rightsizer schema`, rendered -----------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "input.md"
START, END = "<!-- fields: generated from `rightsizer schema` -->", "<!-- fields: end -->"
ORDER = ["Traffic", "Objective", "LoadSettings", "InstanceTypeSpec", "Payload", "ModelPackage",
         "ImageModel", "ExistingModel", "LocalModel", "SyntheticModel"]
TITLES = {"Traffic": "traffic", "Objective": "objective", "LoadSettings": "load",
          "InstanceTypeSpec": "instance_types[] (object form)", "Payload": "payloads[]",
          "ModelPackage": 'model, kind "model_package"', "ImageModel": 'model, kind "image"',
          "ExistingModel": 'model, kind "existing"', "LocalModel": 'model, kind "local"',
          "SyntheticModel": 'model, kind "synthetic"'}


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in spec or "anyOf" in spec:
        parts = [_type(s) for s in spec.get("oneOf", spec.get("anyOf", []))]
        return " or ".join(p for p in parts if p != "null") + (
            " or null" if "null" in parts else "")
    if "const" in spec:
        return json.dumps(spec["const"])
    if "enum" in spec:
        return " or ".join(json.dumps(v) for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list of {_type(spec.get('items', {}))}"
    if kind == "object" and "additionalProperties" in spec:
        return f"object of {_type(spec['additionalProperties'])}"
    return str(kind)


def _allowed(spec: dict[str, Any]) -> str:
    specs = [spec, *spec.get("anyOf", [])]
    rules = []
    for s in specs:
        for key, word in (("exclusiveMinimum", "> "), ("minimum", "≥ "), ("exclusiveMaximum", "< "),
                          ("maximum", "≤ ")):
            if key in s:
                rules.append(f"{word}{_number(s[key])}")
        if "minItems" in s or "maxItems" in s:
            rules.append(f"{s.get('minItems', 0)} to {s.get('maxItems', 'any number of')} items")
        if "pattern" in s:
            rules.append(f"`{s['pattern']}`")
    return ", ".join(rules)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else repr(value)


def _default(name: str, spec: dict[str, Any], required: list[str]) -> str:
    if name in required:
        return "required"
    if "default" not in spec:
        return "`{}`" if spec.get("type") == "object" else "-"
    default = spec["default"]
    if isinstance(default, dict):
        return "see below"
    return f"`{json.dumps(default)}`"


def _table(title: str, model: dict[str, Any]) -> list[str]:
    required = model.get("required", [])
    lines = [f"#### `{title}`", "", "| field | type | default | allowed | meaning |",
             "|---|---|---|---|---|"]
    for name, spec in model["properties"].items():
        row = [f"`{name}`", _type(spec), _default(name, spec, required), _allowed(spec),
               spec.get("description", "")]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return [*lines, ""]


def field_tables() -> str:
    """The field tables of docs/input.md, from the JSON Schema `rightsizer schema` prints."""
    schema = BenchmarkInput.model_json_schema()
    defs = schema["$defs"]
    names = [n for n in ORDER if n in defs] + sorted(set(defs) - set(ORDER))
    lines = _table("top level", schema)
    for name in names:
        lines += _table(TITLES.get(name, name), defs[name])
    return "\n".join(lines)


def test_the_docs_field_tables_are_the_schema() -> None:
    text = DOCS.read_text()
    generated = text[text.index(START) + len(START): text.index(END)].strip()
    assert generated == field_tables().strip(), (
        "docs/input.md is out of date: run `.venv/bin/python tests/test_schema_properties.py`")


def test_the_docs_count_the_corpus() -> None:
    manifest = json.loads((DOCS.parents[1] / "tests/bad_inputs/manifest.json").read_text())
    assert f"{len(manifest['cases'])} malformed inputs" in DOCS.read_text()


if __name__ == "__main__":  # rewrite the generated block of docs/input.md
    text = DOCS.read_text()
    head, rest = text.split(START, 1)
    DOCS.write_text(f"{head}{START}\n\n{field_tables()}\n{END}{rest.split(END, 1)[1]}")
