"""Shared fixtures: real local endpoints on 127.0.0.1, always deleted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rightsizer.endpoints.local import LocalEndpoint
from rightsizer.schema import InstanceTypeSpec, SyntheticModel

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def synthetic_endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A synthetic endpoint; parametrize indirectly with SyntheticModel fields."""
    model = SyntheticModel(**getattr(request, "param", {"slots": 2, "service_ms": 20}))
    with LocalEndpoint(model, InstanceTypeSpec(instance_type="local.1cpu"), tmp_path) as endpoint:
        yield endpoint.deploy()
