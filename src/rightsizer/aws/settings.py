"""The deployment's settings: environment variables set by template.yaml on each function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(RuntimeError):
    """The function's environment is incomplete: a deployment problem, not the user's input."""


@dataclass(frozen=True)
class Settings:
    name_prefix: str
    results_bucket: str
    region: str
    poll_seconds: int = 60
    deploy_timeout_seconds: int = 2700
    loadgen_startup_seconds: int = 600
    loadgen_vcpus: int = 4
    max_concurrency: int = 5
    use_pricing_api: bool = True

    @property
    def max_polls(self) -> int:
        return max(1, -(-self.deploy_timeout_seconds // max(1, self.poll_seconds)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def need(key: str) -> str:
            value = env.get(key, "")
            if not value:
                raise SettingsError(f"environment variable {key} is not set (see template.yaml)")
            return value

        def number(key: str, default: int) -> int:
            raw = env.get(key, "")
            try:
                return int(raw) if raw else default
            except ValueError:
                raise SettingsError(f"variable {key}={raw!r} is not an integer") from None

        return cls(
            name_prefix=need("RIGHTSIZER_NAME_PREFIX"),
            results_bucket=need("RIGHTSIZER_RESULTS_BUCKET"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            poll_seconds=number("RIGHTSIZER_POLL_SECONDS", 60),
            deploy_timeout_seconds=number("RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS", 2700),
            loadgen_startup_seconds=number("RIGHTSIZER_LOADGEN_STARTUP_SECONDS", 600),
            loadgen_vcpus=number("RIGHTSIZER_LOADGEN_VCPUS", 4),
            max_concurrency=number("RIGHTSIZER_MAX_CONCURRENCY", 5),
            use_pricing_api=env.get("RIGHTSIZER_USE_PRICING_API", "true").lower() == "true",
        )
