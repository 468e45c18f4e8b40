"""Reading settings from environment variables: required strings and whole numbers.

The Lambda functions (``aws.settings``) and the load-generator task (``aws.loadgen_task``) both
read theirs this way, so a missing or malformed variable is reported in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping


class EnvError(ValueError):
    """A variable is missing or malformed; the message names it."""


def required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise EnvError(f"{key} is not set")
    return value


def integer(
    env: Mapping[str, str], key: str, default: int | None = None, minimum: int | None = None
) -> int:
    """``int(env[key])``; ``default`` when unset (required when there is no default)."""
    raw = env.get(key, "").strip()
    if not raw:
        if default is None:
            raise EnvError(f"{key} is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvError(f"{key}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise EnvError(f"{key}={value} must be at least {minimum}")
    return value


def boolean(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise EnvError(f"{key}={raw!r} must be 'true' or 'false'")
    return raw == "true"


def s3_uri(env: Mapping[str, str], key: str) -> str:
    value = required(env, key)
    if not value.startswith("s3://"):
        raise EnvError(f"{key}={value!r} is not an s3:// URI")
    return value
