"""Deterministic names, run ids and tags for one Step Functions execution.

SageMaker names must match ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`` (63 characters at most) and its
ARNs carry the name in lower case, so every name here is lower case: IAM policies scoped to
``arn:aws:sagemaker:...:endpoint/<prefix>-*`` then match. A name is built from the stack's name
prefix, the execution name (shortened to fit) and the instance type, plus a short hash of the
execution name and type, so two executions or two types never collide even when shortened.

Every resource is also tagged with the execution ARN, so a janitor can find what one execution
created without trusting names.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

MAX_NAME = 63
HASH_CHARS = 6
MAX_TYPE_SLUG = 20
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")

TAG_EXECUTION_ARN = "rightsizer:execution-arn"
TAG_RUN_ID = "rightsizer:run-id"
TAG_INSTANCE_TYPE = "rightsizer:instance-type"
TAG_PREFIX = "rightsizer:name-prefix"


def slug(text: str) -> str:
    """Lower case letters, digits and single dashes; no dash at either end."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def short_hash(*parts: str, chars: int = HASH_CHARS) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:chars]


def resource_name(prefix: str, execution_name: str, instance_type: str) -> str:
    """``<prefix>-<execution>-<type>-<hash>``, at most 63 characters, the same on every call."""
    if not NAME_PREFIX.match(prefix):
        raise ValueError(
            f"name prefix {prefix!r}: use 2-20 lower case letters, digits and '-', "
            "starting with a letter"
        )
    type_slug = slug(instance_type.removeprefix("ml."))[:MAX_TYPE_SLUG].strip("-") or "type"
    digest = short_hash(execution_name, instance_type)
    fixed = len(prefix) + len(type_slug) + len(digest) + 3  # three dashes
    execution_slug = slug(execution_name)[: max(0, MAX_NAME - fixed - 1)].strip("-")
    parts = [prefix, execution_slug, type_slug, digest] if execution_slug else [
        prefix, type_slug, digest
    ]
    name = "-".join(parts)
    assert len(name) <= MAX_NAME and SAGEMAKER_NAME.match(name), name
    return name


def run_id_for(input_name: str, execution_arn: str, start_time: str | None) -> str:
    """``<name>-<UTC start, 20261125T194400Z>-<hash of the execution ARN>``.

    The same shape as the local mode's run ids; deterministic for one execution, so a retried
    Validate step writes to the same folder.
    """
    started = _parse_time(start_time) if start_time else datetime.now(UTC)
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{input_name}-{stamp}-{short_hash(execution_arn)}"


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_TAG_UNSAFE = re.compile(r"[^\w.:/=+\-@ ]")


def tag_value(text: str) -> str:
    """SageMaker tag values allow letters, digits, spaces and ``_.:/=+-@``; 256 at most.

    Execution names may hold other characters ('!', '(' ...): they become '_'. The janitor
    compares tags through this same function.
    """
    return _TAG_UNSAFE.sub("_", text)[:256]


def resource_tags(
    prefix: str, execution_arn: str, run_id: str, instance_type: str
) -> list[dict[str, str]]:
    """Tags for every model, endpoint config and endpoint of one item (SageMaker's format)."""
    return [
        {"Key": TAG_EXECUTION_ARN, "Value": tag_value(execution_arn)},
        {"Key": TAG_RUN_ID, "Value": tag_value(run_id)},
        {"Key": TAG_INSTANCE_TYPE, "Value": instance_type},
        {"Key": TAG_PREFIX, "Value": prefix},
    ]
