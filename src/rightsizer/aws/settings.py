"""The deployment's settings: environment variables set by template.yaml on each function.

The defaults are the template's (tests/test_bad_inputs.py checks they agree); ``rightsizer.cost``
uses them for estimates made away from a deployed stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rightsizer.env import EnvError, boolean, integer, required

DEFAULT_POLL_SECONDS = 60  # template PollSeconds
DEFAULT_DEPLOY_TIMEOUT_SECONDS = 2700  # template DeployTimeoutSeconds
DEFAULT_LOADGEN_STARTUP_SECONDS = 600  # task start + warm-up, on top of load.max_seconds


class SettingsError(RuntimeError):
    """The function's environment is incomplete: a deployment problem, not the user's input."""


@dataclass(frozen=True)
class Settings:
    name_prefix: str
    results_bucket: str
    region: str
    poll_seconds: int = DEFAULT_POLL_SECONDS
    deploy_timeout_seconds: int = DEFAULT_DEPLOY_TIMEOUT_SECONDS
    loadgen_startup_seconds: int = DEFAULT_LOADGEN_STARTUP_SECONDS
    max_concurrency: int = 5
    use_pricing_api: bool = True

    @property
    def max_polls(self) -> int:
        """DescribeEndpoint checks before a deploy is given up (the deploy timeout, rounded up)."""
        return max(1, -(-self.deploy_timeout_seconds // max(1, self.poll_seconds)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            return cls(
                name_prefix=required(env, "RIGHTSIZER_NAME_PREFIX"),
                results_bucket=required(env, "RIGHTSIZER_RESULTS_BUCKET"),
                region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                poll_seconds=integer(env, "RIGHTSIZER_POLL_SECONDS", DEFAULT_POLL_SECONDS, 0),
                deploy_timeout_seconds=integer(
                    env, "RIGHTSIZER_DEPLOY_TIMEOUT_SECONDS", DEFAULT_DEPLOY_TIMEOUT_SECONDS, 1
                ),
                loadgen_startup_seconds=integer(
                    env, "RIGHTSIZER_LOADGEN_STARTUP_SECONDS", DEFAULT_LOADGEN_STARTUP_SECONDS, 1
                ),
                max_concurrency=integer(env, "RIGHTSIZER_MAX_CONCURRENCY", 5, 1),
                use_pricing_api=boolean(env, "RIGHTSIZER_USE_PRICING_API", True),
            )
        except EnvError as exc:
            raise SettingsError(f"environment variable {exc} (see template.yaml)") from None
