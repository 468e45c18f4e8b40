"""S3: PutObject denied, as a bucket policy or a role without ``s3:PutObject`` would deny it.

moto 5.2.5 checks no IAM policy by default, so every PutObject succeeds; AWS answers 403
``AccessDenied``. ``install`` denies keys that contain one of ``Scenario.s3_denied``, and every
PutObject made from a thread inside ``for_this_thread(True)`` (the fake Fargate task, whose task
role lacks the permission, while the Lambdas' role has it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .scenario import Scenario

_denied = threading.local()


@contextmanager
def for_this_thread(denied: bool) -> Iterator[None]:
    """Deny (or not) this thread's PutObject calls while the block runs."""
    _denied.active = denied
    try:
        yield
    finally:
        _denied.active = False


def install(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    from moto.s3.exceptions import S3AccessDeniedError
    from moto.s3.models import S3Backend

    original_put_object = S3Backend.put_object

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any,
                   **kwargs: Any) -> Any:
        if getattr(_denied, "active", False) or any(p in key_name for p in scenario.s3_denied):
            raise S3AccessDeniedError()
        return original_put_object(self, bucket_name, key_name, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", put_object)
