"""What the load generator sends requests to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpTarget:
    """A server speaking SageMaker's container contract: POST {url}/invocations."""

    url: str


@dataclass(frozen=True)
class SageMakerTarget:
    """A SageMaker endpoint, called through the runtime API with SigV4-signed requests.

    ``endpoint_url`` overrides the runtime URL (a local stand-in for benchmarks and tests).
    """

    endpoint_name: str
    region: str
    endpoint_url: str | None = None


Target = HttpTarget | SageMakerTarget


def runtime_url(region: str, endpoint_url: str | None = None) -> str:
    """The SageMaker runtime API's base URL for ``region``, or the override (a local stand-in)."""
    return endpoint_url or f"https://runtime.sagemaker.{region}.amazonaws.com"
